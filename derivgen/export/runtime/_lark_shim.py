"""The part of lark's interface that `parse.py` uses, served by the standalone parser `_lark_parser`
(generated from derivgen's grammar by `python -m lark.tools.standalone`): no lark needed."""

from __future__ import annotations

from types import SimpleNamespace

from ._lark_parser import (  # noqa: F401
    LarkError, Lark_StandAlone, Token, Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken,
)

exceptions = SimpleNamespace(LarkError=LarkError, UnexpectedInput=UnexpectedInput, UnexpectedCharacters=UnexpectedCharacters,
                             UnexpectedEOF=UnexpectedEOF, UnexpectedToken=UnexpectedToken)


def Lark(grammar: str = "", **options):  # noqa: N802 - lark's own name
    """The standalone parser (the grammar and options were fixed when it was generated)."""
    return Lark_StandAlone()
