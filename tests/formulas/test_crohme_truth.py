import subprocess
import sys
from pathlib import Path

import pytest

from im2latex_encoder.data.errors import InkMLError
from im2latex_encoder.data.inkml import read_inkml
from im2latex_encoder.formulas import (
    caption_agreement,
    normalize_crohme_truth,
    read_crohme_captions,
    read_crohme_dictionary,
)
from im2latex_encoder.formulas.crohme_truth import MAX_NESTING, main


def _norm(truth):
    return " ".join(normalize_crohme_truth(truth))


@pytest.mark.parametrize(
    "truth, expected",
    [
        # dollar signs and whitespace
        ("$a+b$", "a + b"),
        ("  $$ q = 7 $$ ", "q = 7"),
        # numbers and words split into characters
        ("$204 - kt$", "2 0 4 - k t"),
        ("$w = 3,25$", "w = 3 , 2 5"),
        # scripts: one-token arguments braced, braced arguments braced once
        ("$y^3$", "y ^ { 3 }"),
        ("$y_k^2$", "y _ { k } ^ { 2 }"),
        ("y ^ { { m - 1 } }", "y ^ { m - 1 }"),
        ("$e^{-t^2}$", "e ^ { - t ^ { 2 } }"),
        ("$b_\\beta$", "b _ { \\beta }"),
        # \frac and \sqrt arguments, braced or not
        ("$\\frac{3}{8}$", "\\frac { 3 } { 8 }"),
        ("$\\frac 5 {k+1}$", "\\frac { 5 } { k + 1 }"),
        ("$\\frac{\\sqrt 3} 7$", "\\frac { \\sqrt { 3 } } { 7 }"),
        ("$\\sqrt{\\sqrt{u}}$", "\\sqrt { \\sqrt { u } }"),
        ("$\\sqrt[3]{v}$", "\\sqrt [ 3 ] { v }"),
        ("$\\dfrac{p}{q}$", "\\frac { p } { q }"),
        # a command with arguments as a script argument takes them along
        ("$s^\\frac{1}{5}$", "s ^ { \\frac { 1 } { 5 } }"),
        ("$k_\\sqrt{2}$", "k _ { \\sqrt { 2 } }"),
        # groups outside argument positions lose their braces
        ("$\\frac{7}{\\tan^2{u}}$", "\\frac { 7 } { \\tan ^ { 2 } u }"),
        ("${ {h^{3}} + 1 }$", "h ^ { 3 } + 1"),
        ("$\\sum { \\phi }$", "\\sum \\phi"),
        ("{ \\sqrt { w } } ^ { 2 }", "\\sqrt { w } ^ { 2 }"),
        # \left, \right and size commands go, their delimiters stay
        ("\\left( q \\right)", "( q )"),
        ("\\left [ q \\right ]", "[ q ]"),
        ("\\left\\{ q \\right.", "\\{ q"),
        ("\\left| q \\right|", "| q |"),
        ("$\\Bigg( r \\Big) \\big[ \\bigg]$", "( r ) [ ]"),
        # arrows that start like \left/\right are not delimiters
        ("$u \\rightarrow 1$", "u \\rightarrow 1"),
        ("$u \\leftarrow 1$", "u \\leftarrow 1"),
        # spacing commands go
        ("$d\\,t \\; + \\: s\\!r \\quad \\qquad ~ 1$", "d t + s r 1"),
        ("$\\displaystyle m \\ n$", "m n"),
        # text wrappers go, their content stays
        ("{ \\mbox { H } + { C } _ { \\mbox { m } } }", "H + C _ { m }"),
        ("$\\mathrm{d} z$", "d z"),
        ("$\\text{km}$", "k m"),
        # aliases take the captions' spelling
        ("$a \\lt b \\gt c$", "a < b > c"),
        ("$a \\le b \\ge c \\ne d$", "a \\leq b \\geq c \\neq d"),
        ("$k \\to 0$", "k \\rightarrow 0"),
        ("$1, \\dots, n$", "1 , \\ldots , n"),
        ("$1 + \\cdots + n$", "1 + \\cdots + n"),
        ("$\\lbrace c \\rbrace$", "\\{ c \\}"),
        # function names spelt as letters become the command, but not inside a subscript
        ("$2 l o g ( u ) = l o g v$", "2 \\log ( u ) = \\log v"),
        ("$l i m ( u )$", "\\lim ( u )"),
        ("$v_{log}$", "v _ { l o g }"),
        # \limits, primes and escaped braces are kept
        ("$\\int\\limits_0^1 g'$", "\\int \\limits _ { 0 } ^ { 1 } g '"),
        ("$f^{\\prime}$", "f ^ { \\prime }"),
        # a truth that is only a number is written as its value
        ("07.50", "7 . 5"),
        ("$3.0$", "3"),
        ("0.0", "0"),
        ("400", "4 0 0"),
        ("{ 04 k }", "0 4 k"),
        ("( 2.0 )", "( 2 . 0 )"),
    ],
)
def test_normalize_rules(truth, expected):
    assert _norm(truth) == expected


@pytest.mark.parametrize(
    "truth, expected",
    [
        ("", ""),
        ("$$", ""),
        ("\\left. \\right.", ""),
        ("x^", "x ^"),
        ("\\frac{1}", "\\frac { 1 }"),
        ("a } b", "a } b"),  # a stray closing brace stays
        ("{ a + b", "a + b"),  # an unclosed group closes at the end
        ("\\sqrt[3", "\\sqrt [ 3"),
    ],
)
def test_normalize_degenerate_input(truth, expected):
    assert _norm(truth) == expected


def test_unknown_commands_are_kept_as_tokens():
    assert normalize_crohme_truth("$\\zeta + \\foo{x}$") == ["\\zeta", "+", "\\foo", "x"]
    assert normalize_crohme_truth("$a\\ltb$") == ["a", "\\ltb"]


def test_normalize_rejects_non_strings_and_deep_nesting():
    with pytest.raises(TypeError, match="truth"):
        normalize_crohme_truth(None)
    with pytest.raises(ValueError, match="deep"):
        normalize_crohme_truth("{" * (MAX_NESTING + 5) + "x" + "}" * (MAX_NESTING + 5))
    with pytest.raises(ValueError, match="deep"):
        normalize_crohme_truth("x" + "^" * (MAX_NESTING + 5) + "2")
    assert _norm("{" * 50 + "x" + "}" * 50) == "x"


def test_normalize_is_idempotent_on_its_output():
    for truth in ["$\\frac{a^2}{\\sqrt b}$", "\\left( x_1 \\right) \\lt 3", "$\\sum_{i=0}^n i$"]:
        once = _norm(truth)
        assert _norm(once) == once


def test_read_captions(tmp_path):
    path = tmp_path / "caption.txt"
    path.write_text("e_1\t\\frac { 2 } { 4 }\n\ne_2\tx ^ { 2 }\r\ne_3\t\n", encoding="utf-8")
    captions = read_crohme_captions(path)
    assert captions == {
        "e_1": ["\\frac", "{", "2", "}", "{", "4", "}"],
        "e_2": ["x", "^", "{", "2", "}"],
        "e_3": [],
    }


@pytest.mark.parametrize(
    "text, line, reason",
    [
        ("e_1\tx\ne_2 x + 1\n", 2, "without a tab"),
        ("e_1\tx\n\n\tx\n", 3, "stem"),
        ("e_1\tx\ne_1\ty\n", 2, "already"),
    ],
)
def test_read_captions_names_the_file_and_line_of_a_malformed_line(tmp_path, text, line, reason):
    path = tmp_path / "caption.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=reason) as error:
        read_crohme_captions(path)
    assert f"{path}:{line}:" in str(error.value)


def test_read_dictionary(tmp_path):
    path = tmp_path / "dictionary.txt"
    path.write_text("b\t2\n\\frac\t0\n\n<eol>\t1\n", encoding="utf-8")
    assert read_crohme_dictionary(path) == ["\\frac", "<eol>", "b"]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("a\t0\nb\n", ":2:"),
        ("a\t0\nb\tone\n", ":2:"),
        ("a\t0\nb\t0\n", "twice"),
        ("a\t0\na\t1\n", "listed twice"),
    ],
)
def test_read_dictionary_errors(tmp_path, text, reason):
    path = tmp_path / "dictionary.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=reason):
        read_crohme_dictionary(path)


def _ink(truth):
    return f'<ink><annotation type="truth">{truth}</annotation><trace>0 0, 1 1</trace></ink>'


def test_caption_agreement_counts(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.inkml").write_text(_ink("$x^2$"), encoding="utf-8")
    (tmp_path / "sub" / "b.inkml").write_text(_ink("\\frac{1}{2}"), encoding="utf-8")
    (tmp_path / "sub" / "c.inkml").write_text(_ink("a \\lt b"), encoding="utf-8")
    (tmp_path / "d.inkml").write_text("<ink><trace>0 0</trace></ink>", encoding="utf-8")
    (tmp_path / "e.inkml").write_text(_ink("y"), encoding="utf-8")  # no caption
    (tmp_path / "f.inkml").write_text("", encoding="utf-8")  # unreadable
    captions = tmp_path / "caption.txt"
    captions.write_text(
        "a\tx ^ { 2 }\nb\t\\frac { 1 } { 2 }\nc\ta > b\nd\tz\nf\tz\n", encoding="utf-8"
    )
    report = caption_agreement(tmp_path, captions)
    assert report == {
        "total": 3,
        "matched": 2,
        "share": 2 / 3,
        "mismatches": [("c", "a < b", "a > b")],
        "missing_caption": 1,
        "no_truth": 2,
    }


def test_caption_agreement_of_an_empty_folder(tmp_path):
    captions = tmp_path / "caption.txt"
    captions.write_text("a\tx\n", encoding="utf-8")
    report = caption_agreement(tmp_path, captions, progress=True)
    assert (report["total"], report["share"], report["mismatches"]) == (0, 0.0, [])


def test_module_runs_from_the_command_line(tmp_path):
    (tmp_path / "a.inkml").write_text(_ink("$x^2$"), encoding="utf-8")
    (tmp_path / "b.inkml").write_text(_ink("$y^2$"), encoding="utf-8")
    captions = tmp_path / "caption.txt"
    captions.write_text("a\tx ^ { 2 }\nb\ty ^ 2\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "im2latex_encoder.formulas.crohme_truth",
            str(tmp_path),
            str(captions),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert "agreement: 1/2 = 50.00%" in result.stdout
    assert "normalised: y ^ { 2 }" in result.stdout and "caption:    y ^ 2" in result.stdout


def test_main_limits_the_mismatches_it_prints(tmp_path, capsys):
    (tmp_path / "a.inkml").write_text(_ink("$x$"), encoding="utf-8")
    captions = tmp_path / "caption.txt"
    captions.write_text("a\ty\n", encoding="utf-8")
    assert main([str(tmp_path), str(captions), "--show", "0"]) == 0
    assert capsys.readouterr().out.strip() == (
        "agreement: 0/1 = 0.00% (missing caption: 0, no truth: 0)"
    )


def test_real_training_truths_match_their_captions(crohme_dir):
    """A deterministic subset (every 22nd file, ~400) of the CROHME training set."""
    captions = read_crohme_captions(crohme_dir / "train_caption.txt")
    assert len(captions) == 8835
    assert len(read_crohme_dictionary(crohme_dir / "dictionary.txt")) == 111
    paths = sorted((crohme_dir / "train").rglob("*.inkml"))[::22]
    total = matched = 0
    mismatches = []
    for path in paths:
        if path.stem not in captions:
            continue
        try:
            truth = read_inkml(path).truth
        except InkMLError:
            continue
        tokens = normalize_crohme_truth(truth)
        total += 1
        matched += tokens == captions[path.stem]
        if tokens != captions[path.stem]:
            mismatches.append((path.stem, " ".join(tokens), " ".join(captions[path.stem])))
    assert total >= 390
    assert matched / total >= 0.98, mismatches[:10]


def test_real_caption_agreement_on_one_subfolder(crohme_dir):
    folder = min(
        (path for path in (crohme_dir / "train").iterdir() if path.is_dir()),
        key=lambda path: sum(1 for _ in path.rglob("*.inkml")),
    )
    report = caption_agreement(folder, crohme_dir / "train_caption.txt")
    assert report["total"] > 0 and report["share"] >= 0.9, report
    assert report["missing_caption"] == 0
    assert len(report["mismatches"]) == report["total"] - report["matched"]
    for stem, normalised, caption in report["mismatches"]:
        assert normalised != caption and next(folder.rglob(f"{stem}.inkml"), None) is not None


def test_real_test2016_truths_use_only_dictionary_tokens(crohme_dir):
    dictionary = set(read_crohme_dictionary(crohme_dir / "dictionary.txt"))
    paths = sorted((crohme_dir / "test2016").rglob("*.inkml"))[::8]
    assert len(paths) > 100
    for path in paths:
        tokens = normalize_crohme_truth(read_inkml(path).truth)
        assert set(tokens) <= dictionary, (path.stem, set(tokens) - dictionary)
