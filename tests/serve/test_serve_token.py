from vidnav.serve.cli import read_token


def test_the_token_is_the_first_line_of_the_file(tmp_path):
    f = tmp_path / "token.txt"
    f.write_text("s3cret\n# rotated on 2026-12-04\n")
    assert read_token(f) == "s3cret"  # the whole file made a token no client can send (every request 401)
