"""The godotenv v1.5.1 port (tests/double/godotenv.py): how Earthly reads .arg, .secret and .env.

Expected values follow joho/godotenv v1.5.1 parser.go line by line, quirks included.
"""

from __future__ import annotations

import pytest

from tests.double import gofmt
from tests.double.godotenv import DotenvError, DotenvFileError, read, unmarshal_bytes


@pytest.mark.parametrize(("src", "expected"), [
    (b"A=1\nB=2\n", {"A": "1", "B": "2"}),
    (b"export A=1\n", {"A": "1"}),                       # parser.go:73-79
    (b"export=1\n", {"export": "1"}),                    # no space after export: it is the key
    (b"exportA=1\n", {"exportA": "1"}),
    (b"A: yaml style\n", {"A": "yaml style"}),           # parser.go:91: `:` works like `=`
    (b"A = spaced \n", {"A": "spaced"}),
    (b"A=b=c\n", {"A": "b=c"}),
    (b"A=\n", {"A": ""}),                                # KEY= is empty, not absent
    (b"A=value # comment\n", {"A": "value"}),
    (b"A=value#not-a-comment\n", {"A": "value#not-a-comment"}),
    (b"A=a # b # c\n", {"A": "a # b"}),                  # the LAST ` #` ends it (searched backwards, :146-153)
    (b"A='single $B \\n'\n", {"A": "single $B \\n"}),    # single quotes are literal
    (b'A="x\\ny"\n', {"A": "x\ny"}),                      # \n unescaped in double quotes
    (b'A="q\\"uote"\n', {"A": 'q"uote'}),                 # an escaped quote does not close (:167)
    (b'A="back\\\\slash"\n', {"A": "back\\slash"}),
    (b'A="\\$NOPE"\n', {"A": "$NOPE"}),                   # \$ stays a literal $
    (b"A=1\nB=$A-${A}\n", {"A": "1", "B": "1-1"}),       # expansion from earlier keys of the same file
    (b"B=$A\nA=1\n", {"B": "", "A": "1"}),               # later keys are not known yet
    (b"a=1\nB=$a\n", {"a": "1", "B": "$a"}),             # only [A-Z0-9_]+ names expand (:253)
    (b"A=1\nB='$A'\n", {"A": "1", "B": "$A"}),
    (b'A=1\nB="$A"\n', {"A": "1", "B": "1"}),
    (b"A=$(echo no)\n", {"A": "$(echo no)"}),            # `$(` stays: upstream checks the wrong group (:264)
    (b"A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),           # CRLF (:21)
    (b"# comment\n\n   \nA=1\n", {"A": "1"}),
    (b'A="x"B=2\n', {"A": "x", "B": "2"}),               # the rest after a closing quote is a new statement
    (b"A.B=1\n", {"A.B": "1"}),
    (b"MY KEY=1\n", {"MY KEY": "1"}),                    # spaces inside a key are skipped, kept in the name
    (b"LAST", {"": "LAST"}),                              # no `=` before EOF: the empty key (:108-116)
    (b'A="multi\nline"\n', {"A": "multi\nline"}),          # a quoted value may span lines
])
def test_parse(src: bytes, expected: dict[str, str]) -> None:
    assert unmarshal_bytes(src) == expected


def test_an_unexpected_character_names_the_rest_of_the_file() -> None:
    with pytest.raises(DotenvError) as info:
        unmarshal_bytes(b"OK=1\nFOO-BAR=1\nX=2\n")
    assert str(info.value) == 'unexpected character "-" in variable name near "FOO-BAR=1\\nX=2\\n"'


def test_a_line_without_equals_is_an_error_unless_it_is_the_last_bytes() -> None:
    with pytest.raises(DotenvError, match=r'unexpected character "\\n" in variable name near "FOO\\n"'):
        unmarshal_bytes(b"FOO\n")


def test_the_key_loop_walks_bytes_not_runes() -> None:
    # "é" is C3 A9: byte C3 reads as the Latin-1 letter Ã (fine), byte A9 as © (not a letter).
    with pytest.raises(DotenvError, match='unexpected character "©"'):
        unmarshal_bytes("é=1\n".encode())
    # "ú" is C3 BA: Ã and º, both letters, so it passes; "Ö" (C3 96) fails on the control byte 96.
    assert unmarshal_bytes("ú=1\n".encode()) == {"ú": "1"}
    with pytest.raises(DotenvError, match=r'unexpected character "\\u0096"'):
        unmarshal_bytes("Ö=1\n".encode())


def test_unterminated_quotes() -> None:
    with pytest.raises(DotenvError, match='unterminated quoted value "abc'):
        unmarshal_bytes(b'A="abc\nB=1')


def test_read_later_files_win_and_missing_files_say_so(tmp_path) -> None:
    (tmp_path / "one").write_text("A=1\nB=1\n")
    (tmp_path / "two").write_text("B=2\n")
    assert read(str(tmp_path / "one"), str(tmp_path / "two")) == {"A": "1", "B": "2"}
    with pytest.raises(DotenvFileError) as info:
        read(str(tmp_path / "gone.arg"))
    assert info.value.missing
    assert str(info.value) == f"open {tmp_path / 'gone.arg'}: no such file or directory"


@pytest.mark.parametrize(("value", "quoted"), [
    ("plain", '"plain"'),
    ('say "hi"\n', '"say \\"hi\\"\\n"'),
    ("tab\there", '"tab\\there"'),
    ("\x01", '"\\x01"'),
    ("é", '"é"'),
    (b"\xff", '"\\xff"'),
])
def test_go_quote(value: str | bytes, quoted: str) -> None:
    assert gofmt.quote(value) == quoted
