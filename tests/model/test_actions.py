import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidnav.model.actions import ACTIONS, ActionCodec, canonical_actions, parse_actions


@pytest.mark.parametrize(
    "text, expected",
    [
        ("forward left left stop", ["forward", "left", "left", "stop"]),
        ("Forward, forward, RIGHT.", ["forward", "forward", "right", "stop"]),
        ("move forward 75 cm", ["forward"] * 3 + ["stop"]),
        ("The next action is move forward 0.5 m", ["forward", "forward", "stop", "stop"]),
        ("turn left 30 degrees", ["left", "left", "stop", "stop"]),
        ("turn right 45°, then move forward 25 cm", ["right"] * 3 + ["forward"]),
        ("move forward 300 cm", ["forward"] * 4),
        ("turn left 10 degrees", ["left", "stop", "stop", "stop"]),  # rounds to the nearest step, at least one
        ("forward 2 steps then left", ["forward", "forward", "left", "stop"]),
        ("stop", ["stop"] * 4),
        ("forward stop left right", ["forward", "stop", "stop", "stop"]),  # the executor ignores after stop
        ("", ["stop"] * 4),
        ("I cannot tell", ["stop"] * 4),  # documented fallback
        (None, ["stop"] * 4),
        ("move forward 99999999999999999999999999999999999999 cm", ["forward"] * 4),
    ],
)
def test_parse_examples(text, expected):
    assert parse_actions(text) == expected


def test_parse_respects_k():
    assert parse_actions("forward left right", k=2) == ["forward", "left"]
    assert parse_actions("move forward 100 cm", k=6) == ["forward"] * 4 + ["stop"] * 2


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1"))), st.integers(1, 8))
def test_parse_never_raises_and_returns_k_valid_words(text, k):
    out = parse_actions(text, k=k)
    assert len(out) == k
    assert all(a in ACTIONS for a in out)
    assert out == canonical_actions(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=4), st.sampled_from([" ", ", ", "\n", " then "]))
def test_parse_roundtrips_action_strings(actions, sep):
    assert parse_actions(sep.join(actions)) == canonical_actions(actions, 4)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["move forward", "turn left", "turn right"]),
            st.integers(0, 400),
            st.sampled_from(["cm", "degrees", ""]),
        ),
        max_size=5,
    )
)
def test_parse_fuzzed_navid_phrases(parts):
    text = ", ".join(f"{a} {n} {u}" for a, n, u in parts)
    out = parse_actions(text)
    assert len(out) == 4 and set(out) <= set(ACTIONS)
    if parts:
        first = parts[0][0].split()[-1]
        assert out[0] == first


def test_canonical_actions():
    assert canonical_actions(["left", "stop", "forward"], 4) == ["left", "stop", "stop", "stop"]
    assert canonical_actions(["left"] * 6, 4) == ["left"] * 4


class _FakeTokenizer:
    """Encodes each word as a fixed token sequence, to test multi-token words."""

    def __init__(self, table):
        self.table = table

    def encode(self, text, add_special_tokens=False):
        return list(self.table[text.strip()])


def test_codec_builds_a_trie_for_multi_token_words():
    codec = ActionCodec(_FakeTokenizer({"forward": [5, 6], "left": [5, 7], "right": [8], "stop": [9, 10, 11]}))
    assert not codec.single_token
    assert codec.token_ids == [5, 6, 7, 8, 9, 10, 11]
    col = {t: i for i, t in enumerate(codec.token_ids)}
    root_children = (codec.next_node[0] >= 0).nonzero().flatten().tolist()
    assert sorted(codec.token_ids[i] for i in root_children) == [5, 8, 9]
    after5 = codec.next_node[0, col[5]]
    assert codec.words[codec.word_at[codec.next_node[after5, col[7]]]] == "left"
    assert codec.encode(["left", "stop"]) == [5, 7, 9, 10, 11]


def test_codec_rejects_words_that_are_prefixes_of_others():
    with pytest.raises(ValueError, match="prefix-free"):
        ActionCodec(_FakeTokenizer({"forward": [5], "left": [5, 7], "right": [8], "stop": [9]}))


def test_codec_on_the_tiny_tokenizer_uses_single_tokens(tiny_model):
    codec = tiny_model.codec
    assert codec.single_token
    assert len(set(codec.token_ids)) == 4
