"""Build progress: plain lines without a terminal, the current Earthly target tracked."""

from __future__ import annotations

from edgeforge_ext.progress import BuildProgress, _StatusText


def test_plain_lines_without_a_terminal_and_no_colour_codes(capsys):
    with BuildProgress() as progress:
        assert not progress.interactive  # pytest's stderr is not a terminal
        progress.on_line("+iso | \x1b[32mbuilding\x1b[0m the ISO")
        progress.on_line("+build-provider-images | k3s 1.32.3")
    err = capsys.readouterr().err
    assert err.splitlines() == ["+iso | building the ISO", "+build-provider-images | k3s 1.32.3"]
    assert progress.target == "+build-provider-images"
    assert progress.lines == 2


def test_status_text_shows_target_elapsed_and_lines():
    progress = BuildProgress()
    progress.target, progress.lines = "+iso", 7
    progress.started -= 75
    text = _StatusText(progress).__rich__()
    assert "+iso" in text and "1:15 elapsed" in text and "7 lines" in text
