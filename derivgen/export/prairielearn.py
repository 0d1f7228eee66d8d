"""The PrairieLearn export: OUT/prairielearn/questions/<id>/ and serverFilesCourse/derivgen_grader/.

Each question folder holds `info.json`, `question.html` (the statement, the function and the
given names, and one text input per result, named after its variable) and `server.py`:
`generate(data)` draws one of the problem's variants (PrairieLearn seeds `random`),
`grade(data)` reads `data["submitted_answers"][name]` and sets
`data["partial_scores"][name]` (`score` 1 or 0, with feedback). server.py needs Python and
NumPy: the grader comes from `serverFilesCourse/derivgen_grader/`, and the question's data
(names, shapes, random points, the result's values there) is inside server.py itself.
"""

from __future__ import annotations

import base64
import html
import json
import uuid
import zlib
from pathlib import Path

from ..output import write_atomic
from . import Question, dumps, write_package

NAMESPACE = uuid.UUID("7d3f0c1e-6a52-4c1b-9a8e-2f4d1b6c9e10")  # uuid5 namespace of derivgen questions

SERVER_PY = '''"""PrairieLearn server code of the question {qid}, written by `derivgen export prairielearn`.

Python and NumPy only: the grader is `derivgen_grader` in serverFilesCourse/, the question's data
(names, shapes, random points and the verified result's values there) is below.
"""

import base64
import json
import os
import random
import sys
import zlib

_DATA = "{data}"
QUESTION = json.loads(zlib.decompress(base64.b64decode(_DATA)).decode("utf-8"))


def _grader(data=None):
    """The derivgen_grader package, from serverFilesCourse/ (PrairieLearn's path, or ../../ of this file)."""
    options = (data or {{}}).get("options") or {{}}
    here = os.path.dirname(os.path.abspath(__file__))
    for folder in (options.get("server_files_course_path"), os.path.join(here, "..", "..", "serverFilesCourse")):
        if folder and os.path.isdir(os.path.join(folder, "derivgen_grader")) and folder not in sys.path:
            sys.path.insert(0, folder)
    import derivgen_grader

    return derivgen_grader


def _variant(data):
    index = int((data.get("params") or {{}}).get("variant", 0))
    return QUESTION["variants"][index if 0 <= index < len(QUESTION["variants"]) else 0]


def generate(data):
    """Draw a variant (PrairieLearn seeds random with the variant seed)."""
    index = random.randrange(len(QUESTION["variants"]))
    variant = QUESTION["variants"][index]
    data["params"]["variant"] = index
    data["params"]["title"] = variant["title"]
    data["params"]["statement_html"] = variant["statement_html"]
    data["params"]["given_html"] = variant["given_html"]


def grade(data):
    """Score each answer 1 (equal to the verified result at every random point) or 0, with feedback."""
    grader = _grader(data)
    variant = _variant(data)
    submitted = data.get("submitted_answers") or {{}}
    scores = []
    for result in variant["results"]:
        name = result["name"]
        outcome = grader.grade_answer(variant, name, submitted.get(name, ""))
        data["partial_scores"][name] = {{"score": outcome["score"], "weight": 1, "feedback": outcome["feedback"]}}
        data.setdefault("feedback", {{}})[name] = outcome["feedback"]
        scores.append(outcome["score"])
    data["score"] = sum(scores) / len(scores) if scores else 0.0
'''

SYNTAX_HELP = ("Write each answer in derivgen's expression syntax: <code>A'</code> for the transpose, "
               "<code>inv(A)</code>, <code>tr(A)</code>, <code>det(A)</code>, <code>A .* B</code> elementwise, "
               "<code>3*M*u</code> (every product with <code>*</code>), <code>I</code> and <code>1</code> sized by "
               "their neighbours.")


def _paragraphs(text: str) -> str:
    """Statement Markdown as escaped paragraphs; `$…$` math is left for PrairieLearn's MathJax."""
    parts = [p.strip() for p in (text or "").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p)}</p>" for p in parts)


def _given(variant: dict) -> str:
    """The function, the `where:` definitions and the shapes of the names, as HTML with $…$ math."""
    lines = [f"<p>$$f = {html.escape(variant['function_latex'])}$$</p>"]
    for w in variant["where"]:
        lines.append(f"<p>$$\\text{{where }} {html.escape(w['latex'])} = {html.escape(w['expr_latex'])}$$</p>")
    shapes = []
    for v in variant["variables"]:
        assumed = f" ({', '.join(v['assumptions'])})" if v.get("assumptions") else ""
        shapes.append(f"${html.escape(v['latex'])} \\in \\mathbb{{R}}^{{{html.escape(v['shape_latex'] or '1')}}}$"
                      f"{html.escape(assumed)}")
    if shapes:
        lines.append("<p>" + ", ".join(shapes) + ".</p>")
    return "\n".join(lines)


def question_html(q: Question) -> str:
    """question.html: the drawn variant's statement, then one text input per result."""
    inputs = []
    for result in q.variants[0]["results"]:
        name = html.escape(result["name"])
        note = f"<br><small>{html.escape(result['note'])}</small>" if result.get("note") else ""
        inputs.append(
            f'<p><label for="derivgen-{name}">${html.escape(result["lhs_latex"])} =$</label>\n'
            f'  <input type="text" id="derivgen-{name}" name="{name}" value="{{{{submitted_answers.{name}}}}}" '
            f'size="60" autocomplete="off" spellcheck="false">{note}</p>')
    feedback = "\n".join(f"  <p><strong>{html.escape(r['name'])}</strong>:</p>\n  <pre>{{{{feedback.{html.escape(r['name'])}}}}}</pre>"
                         for r in q.variants[0]["results"])
    return (f"<pl-question-panel>\n  <h4>{{{{params.title}}}}</h4>\n  {{{{{{params.statement_html}}}}}}\n"
            f"  {{{{{{params.given_html}}}}}}\n  <p><small>{SYNTAX_HELP}</small></p>\n</pl-question-panel>\n\n"
            + "\n".join(inputs) + f"\n\n<pl-submission-panel>\n{feedback}\n</pl-submission-panel>\n")


def _groups(q: Question) -> list[Question]:
    """Questions whose variants share their result names (inputs are fixed per question)."""
    groups: dict[tuple, Question] = {}
    for variant in q.variants:
        key = tuple(r["name"] for r in variant["results"])
        if key not in groups:
            suffix = "" if not groups else f"_{len(groups) + 1}"
            groups[key] = Question(q.id + suffix, q.title, q.source)
        groups[key].variants.append(variant)
    return list(groups.values())


def export(questions: list[Question], out: Path) -> list[Path]:
    """Write the PrairieLearn export into `out` (OUT/prairielearn); returns the files written."""
    written: list[Path] = []
    write_package(out / "serverFilesCourse")
    written += sorted((out / "serverFilesCourse" / "derivgen_grader").iterdir())
    for question in questions:
        for q in _groups(question):
            folder = out / "questions" / q.id
            for variant in q.variants:
                variant["statement_html"] = _paragraphs(variant["statement"])
                variant["given_html"] = _given(variant)
            info = {"uuid": str(uuid.uuid5(NAMESPACE, q.id)), "title": q.title, "topic": "Matrix calculus",
                    "tags": ["derivgen"], "type": "v3", "singleVariant": False,
                    "gradingMethod": "Internal"}
            data = base64.b64encode(zlib.compress(dumps(q.data()).encode("utf-8"), 9)).decode("ascii")
            for name, text in (("info.json", json.dumps(info, indent=2) + "\n"), ("question.html", question_html(q)),
                               ("server.py", SERVER_PY.format(qid=q.id, data=data))):
                written.append(write_atomic(folder / name, text))
    readme = ("Written by `derivgen export prairielearn`. Copy questions/ and serverFilesCourse/ into your course;\n"
              "server.py grades with Python and NumPy (serverFilesCourse/derivgen_grader).\n")
    written.append(write_atomic(out / "README.txt", readme))
    return written
