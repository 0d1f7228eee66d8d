"""LaTeX handouts: a complete document per problem or per set, ready for `derivgen.pdf`.

The document is one Jinja template (``tex/problem.tex.j2``, ``tex/set.tex.j2``, with the
pieces in ``tex/macros.j2``), rendered through the environment of `derivgen.render`, so a
user's template directory overrides it by name or block by block, as for Markdown. Its first
block, ``preamble``, holds what `preamble` builds with PyLaTeX: the document class, the
packages and the few definitions the body uses. The preamble is built in Python because it
depends on the TeX engine (pdfLaTeX for English, XeLaTeX with xeCJK for Chinese or for text
pdfLaTeX cannot typeset) and because TeX's ``#`` and ``{{`` clash with Jinja's syntax; the
body is a template because that is what users restyle.

Problem files are untrusted, so everything from them reaches TeX through the filters here:

- ``tex``: plain text, every TeX-active character escaped (``\\input`` prints as text);
- ``tex_markdown``: a statement's Markdown (paragraphs, lists, ``**bold**``, ``*em*``,
  ```code```, ``$math$``, ``$$math$$``), its text escaped and its math checked by
  `check_math`;
- ``tex_math``: math that passes `check_math` — a whitelist of the commands and environments
  KaTeX and amsmath share, with balanced braces, paired ``\\left``/``\\right`` and no
  ``^^``, ``%``, ``#`` or control characters — as it is, anything else as typewriter text
  (`safe_math`); `statement_math_errors` reports a statement's rejected formulas, located;
- ``tex_verbatim``: an error message, line by line in typewriter type, escaped;
- ``math_lines``: a long step split into lines at its outermost ``+``/``-``;
- the global ``t_tex(key, **fields)``: the catalogue's prose escaped, `fields` (TeX) inserted.

The TeX run itself (`derivgen.pdf`) never allows shell escape, reads or writes files only in
its own folder and stops at a time limit: what a user's template writes is not checked.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import pass_context

from . import i18n, titles
from .errors import Location, RenderError
from .render import render_template

#: The engines a handout can ask for; `derivgen.pdf` reads the choice from the first line.
PDFLATEX, XELATEX = "pdflatex", "xelatex"
#: The first line of every handout: the "magic comment" editors (TeXstudio, TeXShop,
#: LaTeX Workshop) and `derivgen.pdf.compile_pdf` read to pick the engine.
MAGIC = "% !TEX program = {engine}\n"

#: The fonts of Chinese handouts (Debian: fonts-noto-cjk).
CJK_FONTS = {
    "setCJKmainfont": "Noto Serif CJK SC",
    "setCJKsansfont": "Noto Sans CJK SC",
    "setCJKmonofont": "Noto Sans Mono CJK SC",
}

# --- rendering -------------------------------------------------------------------------------


def render_problem_tex(
    doc: Mapping[str, Any],
    lang: str = "en",
    user_dir: str | Path | None = None,
    solutions: bool = True,
) -> str:
    """Render one problem document as a complete LaTeX document.

    With ``solutions=False`` the result is the problem sheet: the statement and the Given
    section. A failed problem shows its error and no result; a result whose numeric check did
    not pass is withheld with a note, never shown.
    """
    lang = _language(lang)
    context = dict(doc=doc, lang=lang, solutions=solutions, in_set=False, number=None)
    return _render_document("tex/problem.tex.j2", user_dir, lang, plain_text(doc.get("title") or ""), "", context)


def render_set_tex(
    setdoc: Mapping[str, Any],
    lang: str | None = None,
    user_dir: str | Path | None = None,
    solutions: bool = True,
    exclude: Collection[str] = (),
) -> str:
    """Render a set document as one LaTeX handout: its header, every problem, the rules used.

    `lang` defaults to the set's ``language`` (English if it names none). With
    ``solutions=False`` the result is the problem sheet. The problems whose ids are in
    `exclude` are left out (`derivgen.build` leaves out those whose TeX fails, so that the
    rest of the set still compiles).
    """
    if exclude:
        setdoc = {**setdoc, "problems": [d for d in setdoc.get("problems") or [] if d.get("id") not in exclude]}
    lang = _language(lang or setdoc.get("language") or "en")
    title = plain_text(setdoc.get("title") or i18n.text("solution_set" if solutions else "problem_sheet", lang))
    context = dict(setdoc=setdoc, lang=lang, solutions=solutions, in_set=True)
    return _render_document("tex/set.tex.j2", user_dir, lang, title, setdoc.get("author") or "", context)


def render_answers_tex(
    setdoc: Mapping[str, Any],
    lang: str | None = None,
    user_dir: str | Path | None = None,
    exclude: Collection[str] = (),
) -> str:
    """Render the answer key of a set as one LaTeX document: each problem's heading and boxed
    results, nothing else; `lang` and `exclude` as for `render_set_tex`."""
    if exclude:
        setdoc = {**setdoc, "problems": [d for d in setdoc.get("problems") or [] if d.get("id") not in exclude]}
    lang = _language(lang or setdoc.get("language") or "en")
    title = i18n.text("answer_key", lang)
    if setdoc.get("title"):
        title = f"{plain_text(setdoc['title'])} — {title}"
    context = dict(setdoc=setdoc, lang=lang, solutions=True, in_set=True)
    return _render_document("tex/answers.tex.j2", user_dir, lang, title, setdoc.get("author") or "", context)


def engine_of(tex: str) -> str:
    """The engine a handout asks for in its first line (``% !TEX program = xelatex``)."""
    match = re.match(r"%\s*!TEX\s+(?:TS-)?program\s*=\s*(\w+)", tex)
    return XELATEX if match and match.group(1).lower() == XELATEX else PDFLATEX


def _language(lang: str) -> str:
    try:
        return i18n.language(lang)
    except ValueError as exc:
        raise RenderError(str(exc)) from exc


def _render_document(
    name: str, user_dir: str | Path | None, lang: str, title: str, author: str, context: dict
) -> str:

    # Chinese needs XeLaTeX; so does English text with characters pdfLaTeX has no glyph for
    # (a Chinese title in an English handout). The body decides, so render it, look, and
    # render again with the other preamble if needed (rendering costs milliseconds).
    engine = XELATEX if lang == "zh" else PDFLATEX
    text = render_template(name, user_dir, preamble=preamble(lang, engine, title, author), **context)
    if engine == PDFLATEX and not pdflatex_can_typeset(text):
        engine = XELATEX
        text = render_template(name, user_dir, preamble=preamble(lang, engine, title, author), **context)
    text = _BLANK_RUNS.sub("\n\n", text)
    return MAGIC.format(engine=engine) + text


_BLANK_RUNS = re.compile(r"\n{3,}")


# --- the preamble ----------------------------------------------------------------------------

#: What the body's templates use besides the packages: the rule tag beside a step, a box for
#: errors, section headings without numbers (they still become PDF bookmarks).
_DEFINITIONS = r"""
\setcounter{secnumdepth}{0}
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.6\baselineskip plus 2pt}
\setlength{\emergencystretch}{3em}
\allowdisplaybreaks[2]
\setlist{itemsep=0.2\baselineskip, topsep=0.3\baselineskip}
\newcommand{\steprule}[1]{\tag*{\small #1}}
\newcommand{\steplegend}[1]{\par\nopagebreak{\small\raggedright #1\par}}
\makeatletter
\renewcommand\section{\@startsection{section}{1}{\z@}{-3.5ex \@plus -1ex \@minus -.2ex}{2.3ex \@plus .2ex}{\normalfont\Large\bfseries\boldmath\raggedright\hyphenpenalty=10000\exhyphenpenalty=10000}}
\renewcommand\subsection{\@startsection{subsection}{2}{\z@}{-3.25ex \@plus -1ex \@minus -.2ex}{1.5ex \@plus .2ex}{\normalfont\large\bfseries\boldmath\raggedright\hyphenpenalty=10000\exhyphenpenalty=10000}}
\renewcommand\subsubsection{\@startsection{subsubsection}{3}{\z@}{-3.25ex \@plus -1ex \@minus -.2ex}{1.5ex \@plus .2ex}{\normalfont\normalsize\bfseries\boldmath\raggedright\hyphenpenalty=10000\exhyphenpenalty=10000}}
\makeatother
\newsavebox{\errorboxcontent}
\newenvironment{errorbox}{\par\begin{lrbox}{\errorboxcontent}\begin{minipage}{0.94\linewidth}}{\end{minipage}\end{lrbox}\begin{center}\fbox{\usebox{\errorboxcontent}}\end{center}}
\newcommand{\verbatimline}[1]{\mbox{}#1\par}
\newenvironment{verbatimlines}{\par\footnotesize\ttfamily\raggedright\parskip=0pt}{\par}
""".strip()


def preamble(lang: str = "en", engine: str = PDFLATEX, title: str = "", author: str = "") -> str:
    """The document class, packages and definitions of a handout, built with PyLaTeX.

    pdfLaTeX gets T1 fonts (Latin Modern) and UTF-8 input; XeLaTeX gets fontspec and xeCJK
    with the Noto CJK fonts. Both get amsmath, amssymb, mathtools, booktabs, geometry,
    enumitem and hyperref (loaded last, as it must be); `title` and `author` (plain text)
    become the PDF's metadata.
    """
    from pylatex import Command, Document, NoEscape, Package
    from pylatex.utils import dumps_list

    xe = engine == XELATEX
    doc = Document(
        documentclass="article",
        document_options=["11pt", "a4paper"],
        fontenc=None if xe else "T1",
        inputenc=None if xe else "utf8",
        lmodern=not xe,
        textcomp=not xe,
        page_numbers=False,
        geometry_options={"margin": "2.5cm"},
    )
    if xe:
        doc.packages.append(Package("fontspec"))
        doc.packages.append(Package("xeCJK"))
        for command, font in CJK_FONTS.items():
            doc.preamble.append(Command(command, font))
    for package in ("amsmath", "amssymb", "mathtools", "booktabs", "array", "enumitem"):
        doc.packages.append(Package(package))
    doc.packages.append(Package("hyperref", options=["hidelinks", "bookmarksnumbered=false"]))
    metadata = [f"pdftitle={{{tex_escape(title)}}}"] if title else []
    if author:
        metadata.append(f"pdfauthor={{{tex_escape(author)}}}")
    metadata.append("pdflang={" + ("zh-CN" if lang == "zh" else "en") + "}")
    metadata.append("pdfcreator={derivgen}")
    doc.preamble.append(Command("hypersetup", NoEscape(", ".join(metadata))))
    doc.preamble.append(NoEscape(_DEFINITIONS))
    return (
        doc.documentclass.dumps() + "\n"
        + doc.dumps_packages() + "\n"
        + dumps_list(doc.preamble) + "\n"
    )


# --- text ------------------------------------------------------------------------------------

_TEXT_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
}

# Characters pdfLaTeX has no glyph for in its text fonts, typeset through commands that
# every engine knows (XeLaTeX's Latin Modern lacks most of them too).
_SUPERSCRIPTS = dict(zip("⁰⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁱⁿᵀᵗ", "0456789+-=()inTt"))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ᵢⱼₖₘₙ", "0123456789+-=()ijkmn"))
_GREEK = dict(zip(
    "αβγδεζηθικλμνξπρστυφχψωϵϑϕΓΔΘΛΞΠΣΥΦΨΩ",
    "alpha beta gamma delta varepsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma "
    "tau upsilon varphi chi psi omega epsilon vartheta phi Gamma Delta Theta Lambda Xi Pi Sigma "
    "Upsilon Phi Psi Omega".split(),
))
_MATH_SYMBOLS = {
    "∂": r"\partial", "∇": r"\nabla", "⊙": r"\odot", "⊘": r"\oslash", "⊗": r"\otimes",
    "⊕": r"\oplus", "∘": r"\circ", "⋅": r"\cdot", "∙": r"\cdot", "≤": r"\leq", "≥": r"\geq",
    "≠": r"\neq", "≈": r"\approx", "≡": r"\equiv", "∈": r"\in", "∉": r"\notin", "⊂": r"\subset",
    "⊆": r"\subseteq", "∑": r"\sum", "∏": r"\prod", "∫": r"\int", "√": r"\surd",
    "∞": r"\infty", "→": r"\to", "←": r"\leftarrow", "↦": r"\mapsto", "⇒": r"\Rightarrow",
    "⇐": r"\Leftarrow", "⇔": r"\Leftrightarrow", "∀": r"\forall", "∃": r"\exists",
    "‖": r"\|", "⊤": r"\top", "⊥": r"\perp", "−": "-", "∓": r"\mp", "′": r"{}'", "ℝ": r"\mathbb{R}",
    "ℂ": r"\mathbb{C}", "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}", "ℓ": r"\ell", "∅": r"\emptyset",
    "∧": r"\wedge", "∨": r"\vee", "∩": r"\cap", "∪": r"\cup", "⟨": r"\langle", "⟩": r"\rangle",
}
_UNICODE_TEXT: dict[str, str] = {
    **{c: rf"\textsuperscript{{{s}}}" for c, s in _SUPERSCRIPTS.items()},
    **{c: rf"\textsubscript{{{s}}}" for c, s in _SUBSCRIPTS.items()},
    **{c: rf"\ensuremath{{\{name}}}" for c, name in _GREEK.items()},
    **{c: rf"\ensuremath{{{cmd}}}" for c, cmd in _MATH_SYMBOLS.items()},
    "\u00a0": "~",
    "\u200b": "",  # zero-width space
    "\ufeff": "",  # byte-order mark
}
# Letters that look like their Latin twins.
_UNICODE_TEXT.update(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧο", "ABEZHIKMNOPTXo"))

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")

#: Non-ASCII characters pdfLaTeX typesets with T1 fonts, textcomp and UTF-8 input (as LaTeX's
#: t1enc.dfu and ts1enc.dfu declare them): Latin-1, most of Latin Extended-A, typographic
#: punctuation. Anything else makes the handout use XeLaTeX.
_PDFLATEX_EXTRA = frozenset(
    chr(c)
    for first, last in [(0xA0, 0x125), (0x128, 0x137), (0x139, 0x13E), (0x141, 0x148),
                        (0x14A, 0x165), (0x168, 0x17E), (0x2010, 0x2016), (0x2018, 0x201A),
                        (0x201C, 0x201E), (0x2020, 0x2022), (0x2026, 0x2026), (0x2030, 0x2030),
                        (0x2039, 0x203A), (0x20AC, 0x20AC), (0x2122, 0x2122)]
    for c in range(first, last + 1)
)


def pdflatex_can_typeset(tex: str) -> bool:
    """True if `tex` holds no character that pdfLaTeX (T1, UTF-8 input) cannot typeset."""
    return all(ord(c) < 0x80 or c in _PDFLATEX_EXTRA for c in set(tex))


def _escape_char(c: str) -> str:
    return _TEXT_SPECIALS.get(c, _UNICODE_TEXT.get(c, c))


def _escape_code_char(c: str) -> str:
    return _VERBATIM.get(c, _UNICODE_TEXT.get(c, c))


def tex_escape(value: object) -> str:
    """Escape plain text for LaTeX text mode: it prints as written and runs no command.

    Line breaks and runs of white space become one space; control characters are dropped;
    characters pdfLaTeX has no text glyph for (``ᵀ``, Greek letters, ``∂``) are typeset in
    math or as superscripts.
    """
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    return "".join(map(_escape_char, text))


_VERBATIM = {
    **_TEXT_SPECIALS,
    " ": "~",
    "-": "-{}",  # no -- or --- ligatures
    "'": r"\textquotesingle{}",
    "`": r"\textasciigrave{}",
    '"': r"\textquotedbl{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "\t": "~" * 4,
}


def tex_verbatim(value: object, width: int = 88) -> str:
    """Typeset text line by line in typewriter type, spaces kept, everything escaped.

    For error messages with a caret under the spot: nothing in the text can end the block
    (unlike a ``verbatim`` environment, which ``\\end{verbatim}`` in the text would close).
    Lines longer than `width` characters (what fits an error box in \\footnotesize) are wrapped
    (at a space where there is one).
    """
    lines = []
    for line in _CONTROL.sub("", str(value).replace("\t", "    ").replace("\r", "")).split("\n"):
        for chunk in _wrap(line, width):
            escaped = "".join(map(_escape_code_char, chunk))
            lines.append(rf"\verbatimline{{{escaped}}}")
    return "\\begin{verbatimlines}\n" + "\n".join(lines) + "\n\\end{verbatimlines}"


def _wrap(line: str, width: int) -> list[str]:
    """`line` in pieces of at most `width` characters, cut at a space where there is one;
    the pieces after the first are indented by two spaces."""
    pieces = []
    while len(line) > width:
        cut = line.rfind(" ", width // 2, width + 1)
        cut = cut if cut > 0 else width
        pieces.append(line[:cut].rstrip(" "))
        line = "  " + line[cut:].lstrip(" ")
    pieces.append(line)
    return pieces


@pass_context
def t_tex(context: Any, key: str, **fields: Any) -> str:
    """The catalogue's text for `key` in the template's language, escaped for LaTeX, with
    `fields` (already LaTeX: math, escaped text) put in its ``{field}`` places."""
    raw = i18n.text(key, context["lang"])  # unformatted: fields still in braces
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(raw):
        out.append(_escape_fragment(literal))
        if field is not None:
            value = fields[field]
            out.append(format(value, spec) if spec else str(value))
    return "".join(out)


def _escape_fragment(value: str) -> str:
    """Like `tex_escape`, but spaces are kept as they are (prose fragments around fields)."""
    text = _CONTROL.sub(" ", value)
    return "".join(map(_escape_char, text))


# --- math ------------------------------------------------------------------------------------

# Math from a problem file reaches TeX only if every control sequence and environment in it is
# on these lists: what KaTeX supports that the handout's preamble (amsmath, amssymb, mathtools)
# also defines. None of them reads or writes a file, defines a macro, changes a category code,
# builds a command name or skips input (\csname, \UseName, \def, \catcode, \input, \iffalse
# and the like are simply not here). Formulas derivgen prints from the expression tree use a
# small part of this list (tests/test_security_tex.py checks every example against it).
_WORDS = """
    alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa varkappa lambda
    mu nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega
    Gamma Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega varGamma varDelta varTheta
    varLambda varXi varPi varSigma varUpsilon varPhi varPsi varOmega digamma
    pm mp times div cdot cdotp ast star circ bullet oplus ominus otimes oslash odot dagger ddagger
    cap cup sqcap sqcup vee wedge land lor wr setminus smallsetminus amalg diamond uplus
    bigtriangleup bigtriangledown triangleleft triangleright lhd rhd unlhd unrhd boxplus boxminus
    boxtimes boxdot ltimes rtimes leftthreetimes rightthreetimes curlywedge curlyvee dotplus
    divideontimes centerdot barwedge doublebarwedge intercal
    leq le geq ge neq ne equiv approx approxeq sim simeq cong propto ll gg lll ggg prec succ
    preceq succeq subset supset subseteq supseteq subsetneq supsetneq sqsubset sqsupset
    sqsubseteq sqsupseteq in ni notin owns mid parallel nmid nparallel perp vdash dashv models
    asymp bowtie smile frown doteq doteqdot leqslant geqslant lesssim gtrsim lneq gneq nleq ngeq
    nless ngtr nsim ncong triangleq coloneqq eqqcolon coloneq eqcolon Coloneqq vcentcolon
    not colon ldotp
    to gets rightarrow leftarrow leftrightarrow Rightarrow Leftarrow Leftrightarrow
    longrightarrow longleftarrow longleftrightarrow Longrightarrow Longleftarrow
    Longleftrightarrow mapsto longmapsto implies impliedby iff uparrow downarrow updownarrow
    Uparrow Downarrow Updownarrow nearrow searrow swarrow nwarrow hookrightarrow hookleftarrow
    rightharpoonup rightharpoondown leftharpoonup leftharpoondown rightleftharpoons
    leftrightarrows rightleftarrows rightrightarrows leftleftarrows twoheadrightarrow
    twoheadleftarrow rightsquigarrow leadsto xrightarrow xleftarrow
    infty partial nabla forall exists nexists emptyset varnothing neg lnot ell hbar hslash imath
    jmath Re Im aleph beth gimel wp angle measuredangle triangle square blacksquare Box Diamond
    surd top bot prime backprime flat natural sharp clubsuit diamondsuit heartsuit spadesuit
    checkmark dag ddag ldots cdots vdots ddots dots dotsb dotsc dotsm dotsi dotso
    sum prod coprod int iint iiint oint bigcup bigcap bigoplus bigotimes bigodot biguplus
    bigsqcup bigvee bigwedge
    log ln lg exp sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh coth det dim ker
    hom arg deg gcd lim liminf limsup max min sup inf Pr
    langle rangle lvert rvert lVert rVert vert Vert lfloor rfloor lceil rceil lbrace rbrace
    lbrack rbrack lgroup rgroup backslash
    left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr Biggl Biggr bigm Bigm
    biggm Biggm
    mathrm mathbf mathit mathsf mathtt mathcal mathbb mathfrak mathnormal boldsymbol
    operatorname
    hat widehat tilde widetilde bar overline underline vec dot ddot acute grave breve check
    mathring overrightarrow overleftarrow overleftrightarrow underbrace overbrace
    frac dfrac tfrac cfrac binom dbinom tbinom sqrt stackrel overset underset substack boxed
    phantom hphantom vphantom
    quad qquad enspace thinspace medspace thickspace negthinspace negmedspace negthickspace
    displaystyle textstyle scriptstyle scriptscriptstyle limits nolimits
    mathop mathbin mathrel mathord mathopen mathclose mathpunct mathinner
    bmod pmod pod mod hline
    begin end
""".split()
#: The control sequences (named by letters) that math from a problem file may use.
ALLOWED_COMMANDS = frozenset(_WORDS)
#: Text-mode commands: allowed in math (their argument is text) and inside such text.
TEXT_COMMANDS = frozenset("text textrm textbf textit textsf texttt textnormal textup emph".split())
#: What may follow a backslash besides letters: spacing, escaped specials, a line break.
ALLOWED_SYMBOLS = frozenset(",;:! {}|_&%#$\\>")
#: The environments allowed inside math; each of them aligns its cells with & and \\.
ALLOWED_ENVIRONMENTS = frozenset(
    "matrix pmatrix bmatrix Bmatrix vmatrix Vmatrix smallmatrix matrix* pmatrix* bmatrix* "
    "Bmatrix* vmatrix* Vmatrix* cases dcases rcases aligned alignedat gathered array".split()
)
#: Tokens that may follow \left, \right, \middle and the \big family.
DELIMITERS = frozenset(
    list("()[]|./<>") + [rf"\{n}" for n in (
        "{", "}", "|", "langle", "rangle", "lvert", "rvert", "lVert", "rVert", "vert", "Vert",
        "lfloor", "rfloor", "lceil", "rceil", "lbrace", "rbrace", "lbrack", "rbrack", "lgroup",
        "rgroup", "uparrow", "downarrow", "updownarrow", "Uparrow", "Downarrow", "Updownarrow",
        "backslash")]
)
_SIZED = frozenset("left right middle big Big bigg Bigg bigl bigr Bigl Bigr biggl biggr Biggl "
                   "Biggr bigm Bigm biggm Biggm".split())
#: How deeply groups and environments may nest, and how long one formula may be.
MAX_MATH_DEPTH = 40
MAX_MATH_LENGTH = 20_000

_MATH_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\\\Z|\s+|.", re.S)
_BAD_MATH_CHAR = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")


@dataclass(frozen=True)
class MathRejection:
    """Why a formula may not reach TeX: `reason`, and the offset in the formula it concerns."""

    reason: str
    offset: int


@lru_cache(maxsize=65536)
def check_math(tex: str) -> MathRejection | None:
    """Check one formula (the text between the dollars) against the whitelist.

    Returns None when it may be typeset: every control sequence on `ALLOWED_COMMANDS` (or
    `TEXT_COMMANDS`, `ALLOWED_SYMBOLS`), every ``\\begin``/``\\end`` naming an environment of
    `ALLOWED_ENVIRONMENTS` and properly nested, braces balanced, ``\\left``/``\\right``
    paired, ``&`` and ``\\\\`` only inside an environment (or ``\\substack``), no ``^^``
    (TeX's escape for any character), ``%``, ``#``, ``$`` or control character, text
    arguments (``\\text{…}``) free of ``^``, ``_`` and ``&``. Otherwise the first offence.
    """
    if len(tex) > MAX_MATH_LENGTH:
        return MathRejection(f"the formula is longer than {MAX_MATH_LENGTH} characters", 0)
    bad = _BAD_MATH_CHAR.search(tex)
    if bad:
        return MathRejection(f"control character U+{ord(bad.group()):04X}", bad.start())
    hat = tex.find("^^")
    if hat >= 0:
        return MathRejection("^^ (TeX's notation for any character) is not allowed", hat)
    tokens = [(m.group(), m.start()) for m in _MATH_TOKEN.finditer(tex)]
    # A frame per open group or environment: [kind, name, open \left count, text mode].
    frames: list[list] = [["math", "", 0, False]]
    expect_group = None  # (command, offset) whose argument must be a {group}
    text_group = False
    i = 0
    while i < len(tokens):
        tok, at = tokens[i]
        i += 1
        if tok.isspace():
            continue
        top = frames[-1]
        in_text = top[3]
        if expect_group is not None:
            if tok != "{":
                return MathRejection(f"{expect_group[0]} needs its argument in braces", expect_group[1])
            expect_group = None
        if tok == "{":
            if len(frames) > MAX_MATH_DEPTH:
                return MathRejection(f"groups nested more than {MAX_MATH_DEPTH} deep", at)
            frames.append(["group", "", 0, in_text or text_group])
            text_group = False
            continue
        if tok == "}":
            if top[0] != "group":
                what = "an unmatched }" if top[0] == "math" else rf"}} before \end{{{top[1]}}}"
                return MathRejection(what, at)
            if top[2]:
                return MathRejection(r"\left without \right", at)
            frames.pop()
            continue
        if tok in ("%", "#", "$"):
            return MathRejection(f"{tok} is not allowed in a formula (write \\{tok})", at)
        if tok == "\\":
            return MathRejection("a lone backslash at the end", at)
        if in_text and tok in ("^", "_", "&"):
            return MathRejection(f"{tok} inside text (write \\{tok})", at)
        if tok == "&" and not _aligns(frames):
            return MathRejection("& outside a matrix or aligned environment", at)
        if not tok.startswith("\\"):
            continue
        name = tok[1:]
        if len(name) == 1 and not name.isalpha():
            if name == "\\" and not _aligns(frames):
                return MathRejection(r"\\ outside a matrix or aligned environment", at)
            if name not in ALLOWED_SYMBOLS:
                return MathRejection(f"{tok} is not an allowed command", at)
            continue
        if name in TEXT_COMMANDS:
            expect_group, text_group = (tok, at), True
            continue
        if in_text:
            if name not in ("quad", "qquad", "ldots", "dots"):
                return MathRejection(f"{tok} is not allowed inside text", at)
            continue
        if name not in ALLOWED_COMMANDS:
            return MathRejection(f"{tok} is not an allowed command", at)
        if name in ("begin", "end"):
            match = re.match(r"\s*\{([A-Za-z]+\*?)\}", tex[at + len(tok):])
            if not match:
                return MathRejection(f"{tok} needs an environment name in braces", at)
            env = match.group(1)
            if env not in ALLOWED_ENVIRONMENTS:
                return MathRejection(f"the environment {env!r} is not allowed", at)
            end = at + len(tok) + match.end()
            while i < len(tokens) and tokens[i][1] < end:
                i += 1
            if name == "begin":
                if len(frames) > MAX_MATH_DEPTH:
                    return MathRejection(f"environments nested more than {MAX_MATH_DEPTH} deep", at)
                frames.append(["env", env, 0, False])
            elif top[0] != "env" or top[1] != env:
                return MathRejection(rf"\end{{{env}}} without its \begin", at)
            elif top[2]:
                return MathRejection(r"\left without \right", at)
            else:
                frames.pop()
            continue
        if name in _SIZED:
            j = i
            while j < len(tokens) and tokens[j][0].isspace():
                j += 1
            if j >= len(tokens) or tokens[j][0] not in DELIMITERS:
                return MathRejection(f"{tok} needs a delimiter after it", at)
            i = j + 1
            if name == "left":
                top[2] += 1
            elif name in ("right", "middle"):
                if not top[2]:
                    return MathRejection(f"{tok} without \\left", at)
                if name == "right":
                    top[2] -= 1
            continue
        if name == "substack":  # its argument may break lines with \\
            j = i
            while j < len(tokens) and tokens[j][0].isspace():
                j += 1
            if j >= len(tokens) or tokens[j][0] != "{":
                return MathRejection(f"{tok} needs its argument in braces", at)
            if len(frames) > MAX_MATH_DEPTH:
                return MathRejection(f"groups nested more than {MAX_MATH_DEPTH} deep", at)
            frames.append(["group", "substack", 0, False])
            i = j + 1
    if expect_group is not None:
        return MathRejection(f"{expect_group[0]} needs its argument in braces", expect_group[1])
    top = frames[-1]
    if top[0] == "group":
        return MathRejection("an unclosed {", len(tex))
    if top[0] == "env":
        return MathRejection(rf"\begin{{{top[1]}}} without its \end", len(tex))
    if top[2]:
        return MathRejection(r"\left without \right", len(tex))
    return None


def _aligns(frames: list[list]) -> bool:
    """Whether & and \\\\ may stand here: the innermost environment or \\substack group,
    with only plain groups between, is an alignment."""
    for kind, name, _, text in reversed(frames):
        if text:
            return False
        if kind == "env" or name == "substack":
            return True
        if kind == "math":
            return False
    return False


def _math_code(tex: str, delimiter: str = "$") -> str:
    """A rejected formula as typewriter text, dollars included: it prints as written, breakable
    at spaces and before each backslash."""
    text = " ".join(_CONTROL.sub(" ", f"{delimiter}{tex}{delimiter}").split())
    out = []
    for c in text:
        if c == " ":
            out.append(" ")
        elif c == "\\":
            out.append(r"\allowbreak\textbackslash{}")
        else:
            out.append(_escape_code_char(c))
    return r"\texttt{" + "".join(out) + "}"


def safe_math(value: object) -> str:
    """Return `value` as math-mode LaTeX if it passes `check_math`, else as escaped text.

    A rejected formula is typeset as ``\\text{\\texttt{…}}`` (its characters printed as
    written, dollars around it), so the handout still compiles and the reader sees what was
    written; the build reports statements' rejected formulas (`statement_math_errors`).
    Blank lines inside a formula (which would end TeX's paragraph) become one line break.
    """
    text = re.sub(r"\n\s*\n", "\n", str(value))
    if check_math(text) is None:
        return text
    return r"\text{" + _math_code(text) + "}"


def statement_formulas(statement: object) -> list[tuple[str, bool]]:
    """The formulas of a statement as `markdown_to_tex` finds them: ``(tex, display)`` pairs."""
    raw = str(statement)
    found = []
    for match in _INLINE.finditer(_CONTROL.sub(lambda m: "\n" if m.group() in "\u2028\u2029" else " ", raw)):
        if match.group("display"):
            found.append((raw[match.start("display_body"):match.end("display_body")].strip(), True))
        elif match.group("math"):
            found.append((raw[match.start("math_body"):match.end("math_body")], False))
    return found


def statement_math_errors(doc: Mapping[str, Any]) -> list[RenderError]:
    """A located error for each formula of a document's statement (its title and teacher notes
    too) that `check_math` rejects.

    Such a formula is shown as text in the TeX, PDF and HTML handouts; the error (with the
    file, line and column of the formula when it can be found in the problem file) tells the
    author. Cheap: only the statement's own ``$…$`` is checked, and checks are cached.
    """
    statement = "\n\n".join(str(doc.get(key) or "") for key in ("title", "statement", "notes"))
    if "$" not in statement:
        return []
    errors = []
    source = doc.get("source")
    file_text: str | None = None
    for tex, display in statement_formulas(statement):
        rejection = check_math(re.sub(r"\n\s*\n", "\n", tex))
        if rejection is None:
            continue
        if file_text is None:
            file_text = _read_source(source)
        dollars = "$$" if display else "$"
        shown = _excerpt(f"{dollars}{tex}{dollars}")
        errors.append(RenderError(
            f"the formula {shown} is not allowed: {_excerpt(rejection.reason)}; "
            "the TeX and HTML handouts show it as text",
            _formula_location(source, file_text, tex),
            hint="statements' math may use the LaTeX math commands KaTeX and amsmath share "
            r"(\frac, \sqrt, \mathrm, \operatorname, \left( \right), Greek letters, "
            "pmatrix, aligned, cases, …); nothing that defines macros, reads files or "
            "changes category codes",
        ))
    return errors


def _read_source(source: object) -> str:
    if not source:
        return ""
    try:
        path = Path(str(source))
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1_000_000:
            return ""
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _excerpt(text: str, limit: int = 60) -> str:
    """`text` made safe to print on a terminal (control characters shown as escapes), cut."""
    shown = _BAD_MATH_CHAR.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\n", " "))
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _formula_location(source: object, file_text: str, tex: str) -> Location:
    """Where `tex` first appears in the problem file (line and column), else the file alone."""
    first = tex.split("\n", 1)[0]
    at = file_text.find(first) if first.strip() else -1
    if at < 0:
        return Location(str(source) if source else None)
    line = file_text.count("\n", 0, at) + 1
    start = file_text.rfind("\n", 0, at) + 1
    text = file_text[start:].split("\n", 1)[0]
    column = at - start + 1
    if len(text) > 160 or _BAD_MATH_CHAR.search(text):
        text = None
    return Location(str(source), line, column, text)


# --- Markdown statements ---------------------------------------------------------------------

_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?P<code_body>.+?)(?<!`)(?P=ticks)(?!`))"
    r"|(?P<display>\$\$(?P<display_body>(?:\\.|[^$\\])+?)\$\$)"
    # As in Pandoc: no space just inside the dollars, no digit just after, no blank line.
    r"|(?P<math>\$(?P<math_body>(?=[^\s$])(?:\\.|[^$\\\n]|\n(?![ \t]*\n))+?)(?<=\S)\$(?!\d))"
    r"|(?P<escaped>\\[!-/:-@\[-`{-~])",
    re.S,
)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_EM_STAR = re.compile(r"(?<![*\w])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![*\w])", re.S)
_EM_UNDERSCORE = re.compile(r"(?<![\w\\])_(?=[^\s_])(.+?)(?<=[^\s_])_(?!\w)", re.S)
_LIST_ITEM = re.compile(r"^ {0,3}(?:(?P<bullet>[-*+])|(?P<number>\d{1,9})[.)])[ \t]+(?P<rest>.*)$")
_PH = "\x00{}\x00"
_PH_RE = re.compile("\x00(\\d+)\x00")
_OPEN_BOLD, _OPEN_EM, _CLOSE = "\x01", "\x02", "\x03"


def markdown_to_tex(value: object) -> str:
    """Convert a statement's Markdown to LaTeX, minimally and safely.

    Understood: paragraphs, bullet and numbered lists (one level), ``**bold**``, ``*em*``
    (and the underscore forms), ```code```, backslash escapes, ``$math$`` and ``$$math$$``.
    Math goes through `safe_math`; every other character is escaped, so links, headings,
    HTML and TeX commands in the text print as written.
    """
    raw = str(value)
    text = _CONTROL.sub(lambda m: "\n" if m.group() in "\u2028\u2029" else " ", raw)
    pieces: list[str] = []

    def protect(match: re.Match) -> str:
        if match.group("code"):
            body = match.group("code_body")
            body = body[1:-1] if len(body) > 2 and body[0] == body[-1] == " " else body
            tex = r"\texttt{" + "".join(map(_escape_code_char, " ".join(body.split()))) + "}"
        elif match.group("display"):
            # Checked as written (the substitution above would hide a control character).
            body = re.sub(r"\n\s*\n", "\n", raw[match.start("display_body"):match.end("display_body")].strip())
            if check_math(body) is None:
                tex = "\n\\[\n" + body + "\n\\]\n"
            else:  # shown as written (the build reports it: statement_math_errors)
                tex = "\n\n" + _math_code(body, "$$") + "\n\n"
        elif match.group("math"):
            body = raw[match.start("math_body"):match.end("math_body")]
            tex = "$" + body + "$" if check_math(body) is None else _math_code(body)
        else:
            tex = _escape_char(match.group()[1])
        pieces.append(tex)
        return _PH.format(len(pieces) - 1)

    protected = _INLINE.sub(protect, text)

    def inline(lines: list[str]) -> str:
        tex = _PH_RE.sub(lambda m: pieces[int(m.group(1))], _inline(" ".join(lines)))
        # Display math on lines of its own, with no blank line around it (that would end the
        # paragraph) and no space before it.
        tex = re.sub(r"[ \t]*\n\\\[\n", "\n\\[\n", tex)
        tex = re.sub(r"\n\\\]\n[ \t]*", "\n\\]\n", tex)
        return tex.strip()

    out = []
    for kind, items in _blocks(protected.split("\n")):
        if kind == "p":
            out.append(inline(items[0]))
        else:
            env = "enumerate" if kind == "ol" else "itemize"
            body = "\n".join(r"\item " + inline(lines) for lines in items)
            out.append(f"\\begin{{{env}}}\n{body}\n\\end{{{env}}}")
    return "\n\n".join(out)


def _blocks(lines: list[str]) -> list[tuple[str, list[list[str]]]]:
    """Group lines into paragraphs ("p", [[lines]]) and lists ("ul"/"ol", [[item lines], ...])."""
    blocks: list[tuple[str, list[list[str]]]] = []
    current: tuple[str, list[list[str]]] | None = None
    for raw in lines:
        line = raw.strip()
        if not line:
            current = None
            continue
        item = _LIST_ITEM.match(raw)
        if item:
            kind = "ol" if item.group("number") else "ul"
            if current is None or current[0] != kind:
                current = (kind, [])
                blocks.append(current)
            current[1].append([item.group("rest").strip()])
        elif current is None:
            current = ("p", [[line]])
            blocks.append(current)
        else:
            current[1][-1].append(line)
    return blocks


def _inline(text: str) -> str:
    text = _BOLD.sub(lambda m: _OPEN_BOLD + m.group(2) + _CLOSE, text)
    text = _EM_STAR.sub(lambda m: _OPEN_EM + m.group(1) + _CLOSE, text)
    text = _EM_UNDERSCORE.sub(lambda m: _OPEN_EM + m.group(1) + _CLOSE, text)
    out = []
    for part in re.split("(\x00\\d+\x00)", text):
        if _PH_RE.fullmatch(part):
            out.append(part)
        else:
            out.append("".join(map(_escape_char, part)))
    return (
        "".join(out)
        .replace(_OPEN_BOLD, r"\textbf{")
        .replace(_OPEN_EM, r"\emph{")
        .replace(_CLOSE, "}")
    )


# --- titles as plain text ------------------------------------------------------------------

_PLAIN_MATH = [
    (re.compile(r"\^\{?\\top\}?|\^\{?T\}?(?![A-Za-z])"), "ᵀ"),
    (re.compile(r"\^\{?-1\}?"), "⁻¹"),
    (re.compile(r"\^\{?-\\top\}?"), "⁻ᵀ"),
    (re.compile(r"\^\{?2\}?"), "²"),
    (re.compile(r"\^\{?3\}?"), "³"),
    (re.compile(r"\\(?:operatorname|mathrm|mathit|mathbf|text)\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\(?:left|right|displaystyle)"), ""),
    (re.compile(r"\\hat\{?(\\?[A-Za-z]+)\}?"), "\\1\u0302"),
    (re.compile(r"\\bar\{?(\\?[A-Za-z]+)\}?"), "\\1\u0304"),
    (re.compile(r"\\tilde\{?(\\?[A-Za-z]+)\}?"), "\\1\u0303"),
    (re.compile(r"\\[,;:! ]|~"), " "),
    (re.compile(r"\\(?:lVert|rVert|\|)"), "‖"),
    (re.compile(r"\\(?:lvert|rvert)"), "|"),
    (re.compile(r"\\odot"), "⊙"),
    (re.compile(r"\\otimes"), "⊗"),
    (re.compile(r"\\partial"), "∂"),
    (re.compile(r"\\cdot"), "·"),
    (re.compile(r"\\times"), "×"),
    (re.compile(r"\\ell"), "ℓ"),
    (re.compile(r"\\sum"), "∑"),
]
_GREEK_COMMANDS = {name: char for char, name in _GREEK.items()}


def plain_math(tex: str) -> str:
    """A formula as plain text, roughly: `\\operatorname{tr}(AX^{\\top})` → `tr(AXᵀ)`."""
    for pattern, replacement in _PLAIN_MATH:
        tex = pattern.sub(replacement, tex)
    tex = re.sub(r"\\([A-Za-z]+)", lambda m: _GREEK_COMMANDS.get(m.group(1), m.group(1)), tex)
    return unicodedata.normalize("NFC", re.sub(r"[{}\s]", "", tex).replace("\\", ""))


def plain_text(value: object) -> str:
    """A title with `$math$` as plain text, for a page's <title> and a PDF's metadata:
    `Gradient of $\\operatorname{tr}(AX^{\\top})$` → `Gradient of tr(AXᵀ)`."""
    return titles.plain(value)


# --- long formulas ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\\[A-Za-z]+\*?|\\.|\s+|.", re.S)

# Approximate widths in points of Latin Modern math at 11pt (the handout's size), measured on
# the example set's formulas; good to about 10%, which is all line breaking needs.
_NARROW = {"(": 5.2, ")": 5.2, "[": 3.3, "]": 3.3, "|": 3.3, ",": 4.8, ";": 4.8, ".": 3.3,
           "'": 3.3, "!": 3.3, ":": 3.3, "/": 5.5, r"\lvert": 3.3, r"\rvert": 3.3,
           r"\lVert": 5.5, r"\rVert": 5.5, r"\|": 5.5, r"\{": 5.5, r"\}": 5.5,
           r"\langle": 4.3, r"\rangle": 4.3}
_OPERATORS = set("+-=<>") | {r"\odot", r"\oslash", r"\otimes", r"\cdot", r"\times", r"\leq",
                             r"\geq", r"\neq", r"\to", r"\Rightarrow", r"\approx", r"\circ"}
_SPACES = {r"\,": 1.8, r"\;": 3.1, r"\:": 2.4, r"\ ": 3.7, r"\quad": 11.0, r"\qquad": 22.0,
           r"\!": -1.8}
_INVISIBLE = {r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\big", r"\Big",
              r"\displaystyle", r"\textstyle", r"\limits", r"\nolimits"}
_WORD_ARGUMENT = {r"\operatorname", r"\mathrm", r"\text", r"\textrm", r"\mathit", r"\mathsf",
                  r"\mathtt"}
_ONE_ARGUMENT = {r"\mathbf", r"\mathcal", r"\mathbb", r"\boldsymbol", r"\hat", r"\tilde", r"\bar",
                 r"\vec", r"\widehat", r"\widetilde", r"\overline", r"\underline", r"\boxed"}
_FRACTIONS = {r"\frac", r"\dfrac", r"\tfrac"}
_OPERATOR_NAMES = {"log", "exp", "det", "tr", "sin", "cos", "tan", "tanh", "max", "min", "sup",
                   "inf", "lim", "ln", "diag"}


def _glyph(tok: str) -> float:
    if len(tok) == 1:
        if tok.isupper():
            return 8.6
        if tok.isdigit():
            return 5.5
        return 6.0
    name = tok[1:]
    if name in _OPERATOR_NAMES:
        return 5.4 * len(name) + 1.8
    if name[:1].isupper():  # \Sigma, \Gamma, ...
        return 8.0
    if name in ("sum", "prod", "int"):
        return 14.0
    return 7.0


def _group(tokens: list[str], start: int) -> tuple[list, int]:
    """Parse tokens from `start` into a tree of lists (one per brace group); return it and the end."""
    items: list = []
    i = start
    while i < len(tokens):
        tok = tokens[i]
        if tok == "{":
            sub, i = _group(tokens, i + 1)
            items.append(sub)
        elif tok == "}":
            return items, i + 1
        else:
            items.append(tok)
            i += 1
    return items, i


def _is_space(item: Any) -> bool:
    return isinstance(item, str) and item.isspace()


def _widths(items: list, scale: float = 1.0) -> list[float]:
    """The width (pt) of each item of a token tree; a command's arguments count on the command."""
    widths = [0.0] * len(items)

    def argument(j: int) -> int:
        while j < len(items) and _is_space(items[j]):
            j += 1
        return j

    def total(item: Any, factor: float) -> float:
        return sum(_widths(item if isinstance(item, list) else [item], factor))

    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, list):
            widths[i] = total(item, scale)
        elif _is_space(item) or item in _INVISIBLE:
            pass
        elif item in ("^", "_"):
            j = argument(i + 1)
            if j < len(items):
                widths[i] = total(items[j], scale * 0.7) + 0.5
                i = j
        elif item in _FRACTIONS:
            j = argument(i + 1)
            k = argument(j + 1)
            if k < len(items):
                factor = scale * (0.7 if item == r"\tfrac" else 1.0)
                widths[i] = max(total(items[j], factor), total(items[k], factor)) + 2.4 * scale
                i = k
        elif item in _WORD_ARGUMENT or item in _ONE_ARGUMENT:
            j = argument(i + 1)
            if j < len(items):
                if item in _WORD_ARGUMENT:
                    letters = [x for x in _flatten(items[j]) if not x.isspace() and not x.startswith("\\")]
                    widths[i] = scale * (5.4 * len(letters) + (1.8 if item == r"\operatorname" else 0))
                else:
                    widths[i] = total(items[j], scale)
                i = j
        elif item == r"\sqrt":
            widths[i] = 9.0 * scale
        elif item in _SPACES:
            widths[i] = _SPACES[item] * scale
        elif item in _OPERATORS:
            widths[i] = (14.0 if scale == 1.0 else 8.6) * scale
        elif item in _NARROW:
            widths[i] = _NARROW[item] * scale
        else:
            widths[i] = _glyph(item) * scale
        i += 1
    return widths


def _flatten(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    return [tok for sub in item for tok in _flatten(sub)]


def formula_width(latex: str) -> float:
    """The estimated width of a displayed formula, in points at the handout's 11pt."""
    tree, _ = _group(_TOKEN.findall(latex), 0)
    return sum(_widths(tree))


def math_lines(latex: object, width: float = 340.0) -> list[str]:
    """Split a long formula into lines of at most about `width` points at its outermost
    ``+``/``-`` signs, for a multi-line display (each line after the first starts with the
    sign). Signs inside ``\\left( … \\right)`` are used when the outermost ones do not suffice;
    the pairs a break falls into become ``\\bigl( … \\bigr)`` (``\\Bigl`` around fractions),
    which need not stand on one line. A short formula comes back as one line, unchanged.
    """
    latex = str(latex)
    tokens = _TOKEN.findall(latex)
    tree, _ = _group(tokens, 0)
    widths = _widths(tree)
    if sum(widths) <= width:
        return [latex]

    # Top-level items, with the \left…\right pairs (indices of their \left and \right) around
    # each candidate break: a binary + or - (one that follows an operand).
    pairs: dict[int, int] = {}
    stack: list[int] = []
    candidates: list[tuple[int, tuple[int, ...]]] = []
    previous: Any = None
    previous2: Any = None
    sized = (r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr")
    for i, item in enumerate(tree):
        if _is_space(item):
            continue
        if item == r"\left" or (item in ("(", "[") and previous not in sized):
            stack.append(i)  # plain parentheses count too, but need no resizing
        elif (item == r"\right" or (item in (")", "]") and previous not in sized)) and stack:
            left = stack.pop()
            if item == r"\right":
                pairs[left] = i
        elif item in ("+", "-") and _follows_operand(previous, previous2):
            candidates.append((i, tuple(stack)))
        previous2, previous = previous, item
    if not candidates:
        return [latex]

    # Greedy: from each line's start, take the break that leaves the fullest line, where a
    # break inside k pairs of parentheses costs like 80k points of emptiness.
    positions = [0.0]
    for w in widths:
        positions.append(positions[-1] + w)
    breaks: list[tuple[int, tuple[int, ...]]] = []
    start = 0
    while positions[-1] - positions[start] > width:
        fitting = [c for c in candidates if c[0] > start and positions[c[0]] - positions[start] <= width]
        if fitting:
            best = max(fitting, key=lambda c: positions[c[0]] - positions[start] - 80 * len(c[1]))
        else:
            later = [c for c in candidates if c[0] > start]
            if not later:
                break
            best = min(later, key=lambda c: (len(c[1]), c[0]))  # too long: the least deep break
        breaks.append(best)
        start = best[0]
    if not breaks:
        return [latex]

    broken_pairs = {left for _, enclosing in breaks for left in enclosing if left in pairs}
    replaced: dict[int, str] = {}
    for left in broken_pairs:
        right = pairs.get(left)
        if right is None:
            continue
        inner = _flatten(tree[left:right])
        big = r"\Big" if any(tok in _FRACTIONS or tok == r"\sum" for tok in inner) else r"\big"
        replaced[left] = big + "l"
        replaced[right] = big + "r"
    cut = {b for b, _ in breaks}
    lines: list[list[str]] = [[]]
    for i, item in enumerate(tree):
        if i in cut:
            lines.append([])
        lines[-1].append(replaced.get(i) or _unparse(item))
    result = []
    for k, line in enumerate(lines):
        joined = "".join(line).strip()
        if k and joined and joined[0] in "+-":
            joined = "{}" + joined
        result.append(re.sub(r"(\\[Bb]ig[lr])\.", "", joined))
    return result


_OPENING = {"(", "[", r"\{", r"\lvert", r"\lVert", "|", "."}
_NOT_OPERANDS = _OPERATORS | {"^", "_", "&", r"\left", r"\right", r"\,", r"\;", r"\quad", "(", "["}


def _follows_operand(previous: Any, before: Any) -> bool:
    """Whether a sign after `previous` (itself after `before`) is binary: not at the start, not
    after an operator, an opening delimiter or a script mark."""
    if previous is None:
        return False
    if isinstance(previous, list):
        return True  # a group: {…} ends an operand
    if previous in _NOT_OPERANDS:
        return False
    return not (previous in _OPENING and before in (r"\left", r"\bigl", r"\Bigl"))


def _unparse(item: Any) -> str:
    if isinstance(item, str):
        return item
    return "{" + "".join(_unparse(x) for x in item) + "}"


# --- registration ----------------------------------------------------------------------------

#: Filters and globals that `derivgen.render.environment` adds for the LaTeX templates.
FILTERS = {
    "tex": tex_escape,
    "tex_markdown": markdown_to_tex,
    "title_tex": titles.title_tex,
    "tex_math": safe_math,
    "tex_verbatim": tex_verbatim,
    "math_lines": math_lines,
}
GLOBALS = {"t_tex": t_tex}

