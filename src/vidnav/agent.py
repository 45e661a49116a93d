"""The streaming Agent: reset(instruction) → act(frame) → k action words, one frame at a time.

Each call runs the vision tower on the new frame only, computes that frame's tokens once, and updates the
memory incrementally (Uni-NaVid merging happens online). The prompt and instruction are encoded once per
episode; their KV cache, extended by history tokens that can no longer change, is reused by every call, so a
call costs the new and still-changing visual tokens plus k decoding steps. With the ``streaming`` memory
(:mod:`vidnav.model.streaming`) the cache is edited instead: each frame's block enters once at a fixed
position, and frames leaving its window are evicted from every layer, so a call's cost does not grow with
the episode.

    agent = vidnav.load_agent(preset="tiny")          # random weights; or load_agent("runs/ckpt")
    agent.reset("walk past the sofa and stop at the door")
    actions = agent.act(rgb)                            # e.g. ['forward', 'forward', 'left', 'stop']
    for a in actions[1:]: agent.observe(next_rgb)       # frames seen while executing the plan

Returned actions are canonical: everything after the first ``stop`` is ``stop``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch

from vidnav.errors import VidNavError

DEFAULT_AGENT_DIR = Path(__file__).resolve().parent / "assets" / "default_agent"


def _exclusive(method):
    """One call at a time per Agent: a call from a second thread while one runs is refused, not interleaved
    (two threads' frames in one memory corrupted it: every later act() raised until reset())."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if not self._busy.acquire(blocking=False):  # an RLock: act() may call observe() and plan() itself
            raise VidNavError(
                "this Agent is in use by another thread; an Agent holds one episode's memory: give "
                "each thread its own (vidnav.load_agent), or call it from one thread at a time"
            )
        try:
            return method(self, *args, **kwargs)
        finally:
            self._busy.release()

    return call


class Agent:
    """Stateful streaming agent around a VidNavForCausalLM (see the module docstring).

    ``cache_history=False`` recomputes all visual tokens on every call (only the instruction prefix stays
    cached): the same actions, for benchmarks that show what the history cache saves.
    """

    def __init__(self, model, cache_history: bool = True):
        self.model = model.eval()
        if not cache_history and model.config.memory == "streaming":
            raise VidNavError(
                "cache_history=False does not apply to the streaming memory: its history lives in the "
                "KV cache (the training forward is what recomputes it from scratch)"
            )
        self.cache_history = cache_history
        self.strategy = model.memory
        self.num_actions = model.config.num_actions
        self._mem = None
        self._cache = None
        self._prefix_len = 0
        self._stable = 0
        self._next_pos = 0  # position of the next token (streaming memory: not the cache length, entries leave)
        self._entries: list[tuple[tuple, int]] = []  # streaming memory: (key, tokens) after the prefix, cache order
        self._encoder = None
        self.instruction: str | None = None
        self.steps = 0  # frames seen in this episode
        self._busy = threading.RLock()

    # -- episode ----------------------------------------------------------------------------------------------
    @_exclusive
    @torch.no_grad()
    def reset(self, instruction: str) -> None:
        """Start an episode: encode the instruction once and empty the memory."""
        from vidnav.model.processing_vidnav import check_instruction

        check_instruction(instruction)
        m = self.model
        cfg = m.config
        dev = m.markers.device
        ids = m.tokenizer(
            instruction, add_special_tokens=False, truncation=True, max_length=cfg.max_instruction_tokens
        )["input_ids"]
        q = m.query_tokenizer(instruction, truncation=True, max_length=cfg.max_instruction_tokens, return_tensors="pt")
        q_hidden = m.encode_queries(q["input_ids"], q["attention_mask"])
        self._encoder = m.frame_encoder(
            q_hidden[0] if q_hidden is not None else None,
            q["attention_mask"][0].to(dev) if q_hidden is not None else None,
        )
        prefix = m.prefix_embeds(
            torch.tensor(ids, dtype=torch.long), q_hidden[0] if q_hidden is not None else None, q["attention_mask"][0]
        )[None]
        self._prefix_len = prefix.shape[1]
        out = m._base_lm().model(
            inputs_embeds=prefix, position_ids=torch.arange(self._prefix_len, device=dev)[None], use_cache=True
        )
        self._cache = out.cache
        black = None
        if cfg.memory == "navila":
            black = self.strategy.frame_tokens(self._encoder, m._black_features())
        self._mem = self.strategy.stream(black)
        self._stable = 0  # stable history tokens held in the KV cache after the prefix
        self._next_pos = self._prefix_len
        self._entries = []
        self.instruction = instruction
        self.steps = 0

    @_exclusive
    @torch.no_grad()
    def observe(self, rgb: Any) -> None:
        """Add a frame to the memory without planning (frames seen while executing a multi-action plan)."""
        feats = self.model.encode_frames(self._frame(rgb))
        self.observe_features(feats)

    @_exclusive
    @torch.no_grad()
    def observe_features(self, feats: torch.Tensor) -> None:
        """Add one frame given as tower features [1, N, C] (e.g. from a feature cache)."""
        if self._mem is None:
            raise VidNavError("call agent.reset(instruction) before giving it frames")
        if feats.dim() != 3 or feats.shape[0] != 1:
            raise VidNavError(f"observe_features takes one frame's features [1, N, C], got {tuple(feats.shape)}")
        self._mem.push(self.strategy.frame_tokens(self._encoder, feats))
        self.steps += 1

    @_exclusive
    @torch.no_grad()
    def act(self, rgb: Any, ban_first: str | Collection[str] | None = None) -> list[str]:
        """Add the frame and plan the next k actions (constrained greedy decoding; ``ban_first`` as in
        :meth:`plan`)."""
        self._check_ban_first(ban_first)  # before the frame goes into memory
        self.observe(rgb)
        return self.plan(ban_first=ban_first)

    @_exclusive
    @torch.no_grad()
    def plan(self, ban_first: str | Collection[str] | None = None) -> list[str]:
        """Plan k actions from the current memory (the last frame given is the current observation).

        ``ban_first``: an action word, or several, the plan may not start with (e.g. ``"forward"`` after a
        blocked step).

        The KV cache holds the instruction prefix plus the memory's *stable* history tokens (those that can no
        longer change: all of NaVid's / LLaMA-VID's history, Uni-NaVid's long-term tokens but the last); a call
        runs the LM only over the new stable tokens and the rest of the visual input. Exact for a causal LM.
        """
        from vidnav.model.actions import canonical_actions

        self._check_ban_first(ban_first)
        if self._mem is None or self._mem.current is None:
            raise VidNavError("call agent.reset(instruction) and give it a frame before planning")
        m = self.model
        decoder = m._base_lm().model
        vis = self._mem.visual()
        if hasattr(self._mem, "take_events"):  # the streaming memory edits the cache itself
            lead = self._apply_events()
            words = self._continue(
                vis,
                None,
                lambda h, cache, pos: m.decode_actions(h, cache, None, pos, ban_first),
                lead,
                self._fused(ban_first),
            )
            return canonical_actions(words[0], self.num_actions)
        stable = self._mem.stable_tokens() if self.cache_history else 0
        if stable < self._stable:  # cannot happen with the shipped memories; recompute rather than be wrong
            self._cache.crop(-(self._cache.get_seq_length() - self._prefix_len))
            self._stable = 0
        if stable > self._stable:  # extend the cache with history tokens that just became final
            new = vis.history[self._stable : stable].to(m.markers.dtype)[None]
            start = self._prefix_len + self._stable
            decoder(
                inputs_embeds=new,
                position_ids=torch.arange(start, start + new.shape[1], device=new.device)[None],
                cache=self._cache,
                use_cache=True,
            )
            self._stable = stable
        self._next_pos = self._prefix_len + self._stable
        words = self._continue(
            vis,
            None,
            lambda h, cache, pos: m.decode_actions(h, cache, None, pos, ban_first),
            fused=self._fused(ban_first),
        )
        return canonical_actions(words[0], self.num_actions)

    def _fused(self, ban_first):
        """With tree decoding, a function that runs the suffix and the action tree in one LM call
        (:func:`vidnav.model.tree_decode.suffix_and_tree`); else None (the suffix, then ``decode_actions``)."""
        from vidnav.model import tree_decode

        m = self.model
        k = self.num_actions
        if m.decoding_on(m.markers.device) != "tree" or not tree_decode.usable(m.codec, k):
            return None
        return lambda suffix, cache, first: tree_decode.suffix_and_tree(
            m._base_lm(), m.codec, k, suffix, cache, first, ban_first
        )

    def _apply_events(self) -> list[tuple]:
        """Streaming memory: replay its cache edits in order. An entry runs through the LM at the next free
        positions, attending to the cache as it is; an eviction removes the entry's rows from every layer.

        The entries after the last eviction are not run here but returned: they lead the suffix in the same LM
        call (:meth:`_continue`), where causal attention gives them exactly what they would see alone, so a step
        costs one LM call for the new frame's block and the current frame, and one for the action words."""
        from vidnav.model.streaming import evict

        decoder = self.model._base_lm().model
        events = self._mem.take_events()
        k = len(events)
        while k and events[k - 1][0] == "enter":
            k -= 1
        for event in events[:k]:
            if event[0] == "evict":
                at = next(i for i, (key, _) in enumerate(self._entries) if key == event[1])
                start = self._prefix_len + sum(n for _, n in self._entries[:at])
                evict(self._cache, start, self._entries.pop(at)[1])
                continue
            _, key, tokens = event
            new = tokens.to(self.model.markers.dtype)[None]
            pos = torch.arange(self._next_pos, self._next_pos + new.shape[1], device=new.device)[None]
            decoder(inputs_embeds=new, position_ids=pos, cache=self._cache, use_cache=True)
            self._entries.append((key, new.shape[1]))
            self._next_pos += new.shape[1]
        self._stable = sum(n for _, n in self._entries)  # history tokens in the cache; the lead entries follow
        return events[k:]

    def _continue(self, vis, question_ids, decode, lead: list[tuple] = (), fused=None):
        """Run the not-yet-cached visual tokens (and a question's tokens) on the KV cache, let ``decode(last
        hidden, cache, last position)`` write the answer, then cut the cache back to the prefix and the stable
        history, so neither planning nor asking changes what the next call sees.

        ``lead``: streaming-memory entries (``("enter", key, tokens)``) whose tokens open the visual tokens
        not yet cached; they stay in the cache afterwards. ``fused(suffix, cache, first position)``, if given,
        runs the suffix and writes the answer itself (one LM call), in place of the call and ``decode``."""
        m = self.model
        cached = self._prefix_len + self._stable
        kept = sum(e[2].shape[0] for e in lead)
        suffix = m.suffix_embeds(vis.history[self._stable :], vis.current, question_ids)[None]
        pos = torch.arange(self._next_pos, self._next_pos + suffix.shape[1], device=suffix.device)[None]
        try:
            if fused is not None:
                return fused(suffix, self._cache, self._next_pos)
            # batch of one without padding: no attention mask needed (causal attention over the cache)
            out = m._base_lm().model(inputs_embeds=suffix, position_ids=pos, cache=self._cache, use_cache=True)
            return decode(out.last_hidden_state[:, -1], out.cache, pos[:, -1])
        finally:
            extra = self._cache.get_seq_length() - cached
            if lead and extra >= kept:  # the lead entries ran: they are in the cache now
                extra -= kept
                self._entries += [(e[1], e[2].shape[0]) for e in lead]
                self._next_pos += kept
                self._stable += kept
            elif lead:  # the LM call failed: run them again next time
                self._mem.pending[:0] = list(lead)
            if extra > 0:
                self._cache.crop(-extra)

    @_exclusive
    @torch.no_grad()
    def ask(self, question: str) -> str:
        """Answer a question about what the agent has seen so far (e.g. "which room are you in?"), greedy and
        deterministic. The memory is not changed: asking never alters the next plan. Models co-trained on
        embodied questions (``vidnav train --qa-data``) answer the question families in
        :mod:`vidnav.data.questions`; others answer whatever their LM writes."""
        from vidnav.model.answers import greedy_answer, question_ids

        ids, mask = question_ids(self.model.tokenizer, [question])  # checks the question
        ids = ids[0][mask[0].bool()]
        if self._mem is None or self._mem.current is None:
            raise VidNavError("call agent.reset(instruction) and give it a frame before asking about it")
        m = self.model
        lead = self._apply_events() if hasattr(self._mem, "take_events") else ()
        return self._continue(
            self._mem.visual(), ids, lambda h, cache, pos: greedy_answer(m, h, cache, None, pos), lead
        )[0]

    # -- introspection ----------------------------------------------------------------------------------------
    @property
    def run_options(self):
        """How this agent is meant to be run (a :class:`vidnav.run_options.PlanOptions`: re-plan when blocked,
        break loops, actions executed per plan), from its checkpoint's run_options.json. The Agent only plans;
        :func:`vidnav.load_navigator` executes its plans with these options, as `vidnav eval` does."""
        from vidnav.run_options import PlanOptions

        return getattr(self.model, "run_options", None) or PlanOptions()

    def memory_state(self):
        """The memory's current visual tokens and counts (a vidnav.model.memory.Visual)."""
        if self._mem is None:
            raise VidNavError("call agent.reset(instruction) first")
        return self._mem.visual()

    def _check_ban_first(self, ban_first) -> None:
        if ban_first is None:
            return
        known = self.model.codec.words
        words = [ban_first] if isinstance(ban_first, str) else ban_first
        if not isinstance(words, Collection) or not words or any(w not in known for w in words):
            raise VidNavError(
                f"unknown action word in ban_first={ban_first!r}: give an action word or a list of "
                f"them, from {', '.join(known)}"
            )
        if set(words) >= set(known):
            raise VidNavError(f"ban_first={sorted(words)} bans every action word; leave at least one")

    @staticmethod
    def _frame(rgb: Any) -> torch.Tensor:
        from vidnav.model.processing_vidnav import as_frames

        shape = getattr(rgb, "shape", None)
        if shape is not None and len(shape) != 3:
            raise VidNavError(f"the agent takes one RGB frame [H, W, 3], got shape {tuple(shape)}")
        return as_frames(rgb, "frame")


def load_agent(
    checkpoint: str | Path | None = None, preset: str | None = None, *, device=None, dtype=None, **overrides
) -> Agent:
    """An Agent from a checkpoint folder, or from a preset with fresh weights, or the shipped default.

    ``overrides`` set config fields (e.g. ``memory="navid"``); with a checkpoint only those that do not change
    the weights make sense. ``load_agent()`` with no arguments loads ``DEFAULT_AGENT_DIR``. The checkpoint's
    run options come along as ``agent.run_options``; :func:`vidnav.load_navigator` runs the agent with them.
    """
    from vidnav.model import build_model
    from vidnav.model.modeling_vidnav import VidNavForCausalLM

    if checkpoint is not None and preset is not None:
        raise VidNavError("give either checkpoint= (a trained model folder) or preset= (fresh weights), not both")
    if preset is not None:
        model = build_model(preset, device=device, dtype=dtype, **overrides)
    else:
        if checkpoint is None:
            if not (DEFAULT_AGENT_DIR / "config.json").is_file():
                raise VidNavError(
                    f"no default checkpoint is shipped yet (expected {DEFAULT_AGENT_DIR}); pass "
                    "checkpoint='path/to/folder' or preset='tiny' for random weights"
                )
            checkpoint = DEFAULT_AGENT_DIR
        model = VidNavForCausalLM.from_pretrained(checkpoint, device=device, dtype=dtype, **overrides)
    return Agent(model)
