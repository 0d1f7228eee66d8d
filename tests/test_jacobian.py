"""Jacobians, matrix-by-matrix derivatives, Hessians, layouts and the symmetric gradient.

Each case is a small problem as a user writes it. The test evaluates f itself (from the parsed
tree with `derivgen.numeric.evaluate`: evaluation, not differentiation) and compares the
engine's result, entry by entry, with its own central finite differences:

- a Jacobian of f: ℝᵐˣⁿ → ℝᵖˣᑫ is the (pq × mn) matrix of ∂ vec f / ∂ vec X (columns stacked);
  denominator layout means the engine returns its transpose;
- a Hessian is the Jacobian of the gradient, here computed by second differences of f;
- a gradient in numerator layout is the transpose of the finite-difference gradient;
- the symmetric-constrained gradient Gₛ satisfies Σ_{i≤j} Gₛᵢⱼ Wᵢⱼ = Df[W] for symmetric W.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from derivgen import expr as E
from derivgen.derive.jacobian import derive_jacobian
from derivgen.derive.model import Block, Derivation, Step
from derivgen.errors import VerificationError
from derivgen.numeric import evaluate
from derivgen.pipeline import build_context, solve
from derivgen.problem import load_problem_text
from derivgen.verify import verify_jacobian

SIZES = {"m": 3, "n": 4, "p": 2, "q": 5}


def problem(src: str):
    return load_problem_text(textwrap.dedent(src))


def sample(ctx, rng):
    values = {}
    for name, (r, c) in ctx.variables.items():
        r, c = (SIZES.get(d, d) if isinstance(d, str) else d for d in (r, c))
        a = rng.standard_normal((r, c))
        assume = ctx.assume.get(name, set())
        if "symmetric" in assume:
            a = (a + a.T) / 2
        if r == c and r > 1 and ("invertible" in assume or "symmetric" in assume):
            a = a / np.sqrt(r) + 2 * np.eye(r)
        values[name] = a
    return values


def vec(a):
    return np.asarray(a).reshape(-1, 1, order="F")


def fd_jacobian(fun, x0, h=1e-4):
    """Central differences, column k = ∂ vec f / ∂ (vec x)ₖ."""
    cols = []
    for k in range(x0.size):
        e = np.zeros(x0.size)
        e[k] = h
        e = e.reshape(x0.shape, order="F")
        cols.append((vec(fun(x0 + e)) - vec(fun(x0 - e))) / (2 * h))
    return np.hstack(cols)


def f_of(ctx, values, wrt):
    return lambda x: evaluate(ctx.function, {**values, wrt: x}, SIZES)


# (name, problem YAML, rules the derivations must cite)
CASES = [
    ("vec X", """
        variables: {X: [m, n]}
        function: vec(X)
        wrt: [X]
        """, ("D24",)),
    ("A x", """
        variables: {A: [m, n], x: [n]}
        function: A*x
        wrt: [x]
        layout: numerator
        """, ("J0", "L2")),
    ("sigma(W x)", """
        variables: {W: [m, n], x: [n]}
        function: sigma(W*x)
        wrt: [x]
        """, ("J0", "J1", "L1")),
    ("softmax", """
        variables: {z: [n]}
        function: softmax(z)
        wrt: [z]
        """, ("D19",)),
    ("x .* y", """
        variables: {x: [n], y: [n]}
        function: x .* y
        wrt: [x]
        """, ("J1",)),
    ("exp(A x)", """
        variables: {A: [m, n], x: [n]}
        function: exp(A*x)
        wrt: [x]
        """, ("J1",)),
    ("x (xᵀa)", """
        variables: {x: [n], a: [n]}
        function: x*(x'*a)
        wrt: [x]
        """, ("J2", "J4")),
    ("diag(x) b", """
        variables: {x: [n], b: [n]}
        function: diag(x)*b
        wrt: [x]
        """, ("J3",)),
    ("A X B", """
        variables: {A: [p, m], X: [m, n], B: [n, q]}
        function: A*X*B
        wrt: [X]
        """, ("V1", "V4")),
    ("inv(X)", """
        variables: {X: [n, n]}
        assume: {X: [invertible]}
        function: inv(X)
        wrt: [X]
        """, ("V1", "D5")),
    ("Xᵀ X", """
        variables: {X: [m, n]}
        function: X'*X
        wrt: [X]
        """, ("V1", "V2")),
    ("X .* X", """
        variables: {X: [m, n]}
        function: X .* X
        wrt: [X]
        """, ("V3",)),
    ("tr(X) x", """
        variables: {X: [n, n], x: [n]}
        function: tr(X)*x
        wrt: [X]
        """, ("V5",)),
    ("W x wrt W", """
        variables: {W: [m, n], x: [n]}
        function: sigma(W*x)
        wrt: [W]
        """, ("V1", "V3")),
]


@pytest.mark.parametrize("name, src, rules", CASES, ids=[c[0] for c in CASES])
def test_jacobian_matches_finite_differences(name, src, rules):
    p = problem(src)
    solved = solve(p, detail="full")  # one rule per line: each expected rule shows
    ctx = solved.context
    cited = {r for d in solved.derivations for b in d.blocks for s in b.steps for r in s.rules}
    assert set(rules) <= cited, f"{name}: expected {rules}, cited {sorted(cited)}"
    for d in solved.derivations:
        assert d.kind == "jacobian"
        for seed in range(2):
            values = sample(ctx, np.random.default_rng(seed))
            want = fd_jacobian(f_of(ctx, values, d.wrt), values[d.wrt])
            got = evaluate(d.result, values, SIZES)
            got = got if d.layout == "numerator" else got.T
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_jacobian_in_both_layouts_are_transposes():
    src = """
        variables: {W: [m, n], x: [n]}
        function: sigma(W*x)
        wrt: [x]
        layout: {layout}
        """
    num = solve(problem(src.replace("{layout}", "numerator")))
    den = solve(problem(src.replace("{layout}", "denominator")))
    values = sample(num.context, np.random.default_rng(3))
    a = evaluate(num.derivations[0].result, values, SIZES)
    b = evaluate(den.derivations[0].result, values, SIZES)
    assert a.shape == (3, 4) and b.shape == (4, 3)
    np.testing.assert_allclose(a, b.T, rtol=1e-12)


HESSIANS = [
    ("quadratic form", """
        variables: {x: [n], A: [n, n]}
        function: x'*A*x
        wrt: [x]
        order: 2
        """, "A + A'"),
    ("logistic regression", """
        variables: {X: [m, n], y: [m], w: [n]}
        function: sum(log(1 + exp(X*w))) - y'*X*w
        wrt: [w]
        order: 2
        """, "X'*diag(sigma(X*w) .* (1 - sigma(X*w)))*X"),
    ("logsumexp", """
        variables: {z: [n]}
        function: logsumexp(z)
        wrt: [z]
        order: 2
        """, "diag(softmax(z)) - softmax(z)*softmax(z)'"),
    ("Frobenius norm over a matrix", """
        variables: {X: [m, n]}
        function: tr(X'*X)
        wrt: [X]
        order: 2
        """, "2*eye(m*n)"),
]


def fd_hessian(fun, x0, h=1e-3):
    """Second central differences of a scalar function, over the entries of vec x."""
    n = x0.size
    out = np.zeros((n, n))

    def at(*steps):
        x = x0.reshape(-1, order="F").copy()
        for k, s in steps:
            x[k] += s
        return float(fun(x.reshape(x0.shape, order="F")).ravel()[0])

    for i in range(n):
        for j in range(n):
            out[i, j] = (at((i, h), (j, h)) - at((i, h), (j, -h)) - at((i, -h), (j, h)) + at((i, -h), (j, -h))) / (4 * h * h)
    return out


@pytest.mark.parametrize("name, src, expected_text", HESSIANS, ids=[h[0] for h in HESSIANS])
def test_hessian_matches_second_differences(name, src, expected_text):
    solved = solve(problem(src))
    kinds = [d.kind for d in solved.derivations]
    assert kinds == ["gradient", "hessian"]
    hess = solved.derivations[1]
    assert any("H1" in s.rules for b in hess.blocks for s in b.steps)
    from derivgen.printing import text

    assert text(hess.result) == expected_text  # the textbook form, not an expanded mess
    ctx = solved.context
    values = sample(ctx, np.random.default_rng(0))
    want = fd_hessian(f_of(ctx, values, hess.wrt), values[hess.wrt])
    got = evaluate(hess.result, values, SIZES)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_gradient_in_numerator_layout_is_the_transpose():
    solved = solve(problem("""
        variables: {x: [n], A: [n, n]}
        function: x'*A*x
        wrt: [x]
        layout: numerator
        """))
    d = solved.derivations[0]
    assert d.layout == "numerator" and any("L2" in s.rules for b in d.blocks for s in b.steps)
    values = sample(solved.context, np.random.default_rng(1))
    g = evaluate(d.result, values, SIZES)
    a, x = values["A"], values["x"]
    assert g.shape == (1, 4)
    np.testing.assert_allclose(g, ((a + a.T) @ x).T, rtol=1e-12)


def test_the_sets_layout_reaches_its_problems(tmp_path):
    """`layout: numerator` in derivgen.yaml is every problem's default; a problem's own wins."""
    import json

    import derivgen

    (tmp_path / "derivgen.yaml").write_text("layout: numerator\n")
    (tmp_path / "a.yaml").write_text("variables: {x: [n], A: [n, n]}\nfunction: x'*A*x\nwrt: [x]\n")
    (tmp_path / "b.yaml").write_text("variables: {x: [n], A: [n, n]}\nfunction: x'*A*x\nwrt: [x]\nlayout: denominator\n")
    out = tmp_path / "out"
    derivgen.api.build_set(derivgen.api.find_set(tmp_path, formats="json"), out)
    a, b = (json.loads((out / f"{name}.json").read_text()) for name in "ab")
    assert a["results"][0]["layout"] == "numerator" and a["results"][0]["shape"] == [1, "n"]
    assert b["results"][0]["layout"] == "denominator" and b["results"][0]["shape"] == ["n", 1]


def test_gradient_in_the_space_of_symmetric_matrices():
    solved = solve(problem("""
        variables: {X: [n, n], A: [n, n]}
        assume: {X: [spd]}
        function: tr(A*X) + logdet(X)
        wrt: [X]
        constrain_symmetric: space
        """))
    d = solved.derivations[0]
    assert d.symmetric == "space" and any("Y2" in s.rules for b in d.blocks for s in b.steps)
    ctx = solved.context
    values = sample(ctx, np.random.default_rng(3))
    gs = evaluate(d.result, values, SIZES)
    a, x = values["A"], values["X"]
    np.testing.assert_allclose(gs, (a + a.T) / 2 + np.linalg.inv(x), rtol=1e-10)  # sym(Aᵀ + X⁻¹)
    f = f_of(ctx, values, "X")
    rng = np.random.default_rng(4)
    for _ in range(3):  # ⟨sym G, W⟩ is the derivative along every symmetric W
        w = rng.standard_normal(x.shape)
        w = (w + w.T) / 2
        h = 1e-5
        df = (f(x + h * w) - f(x - h * w)) / (2 * h)
        assert abs(np.sum(gs * w) - df) <= 1e-6 * max(1.0, abs(df))


def test_symmetric_constrained_gradient():
    solved = solve(problem("""
        variables: {X: [n, n], A: [n, n]}
        assume: {X: [symmetric]}
        function: tr(A*X) + logdet(X)
        wrt: [X]
        constrain_symmetric: true
        """))
    d = solved.derivations[0]
    assert d.symmetric and any("Y1" in s.rules for b in d.blocks for s in b.steps)
    ctx = solved.context
    rng = np.random.default_rng(2)
    values = sample(ctx, rng)
    gs = evaluate(d.result, values, SIZES)
    np.testing.assert_allclose(gs, gs.T, rtol=1e-12)  # the constrained gradient is symmetric
    f = f_of(ctx, values, "X")
    for _ in range(3):
        w = rng.standard_normal((4, 4))
        w = (w + w.T) / 2
        h = 1e-5
        df = (float(f(values["X"] + h * w)[0, 0]) - float(f(values["X"] - h * w)[0, 0])) / (2 * h)
        np.testing.assert_allclose(np.sum(np.triu(gs * w)), df, rtol=1e-6)


def test_logistic_gradient_reads_as_in_the_textbook():
    solved = solve(problem("""
        variables: {X: [m, n], y: [m], w: [n]}
        function: sum(log(1 + exp(X*w))) - y'*X*w
        wrt: [w]
        """))
    from derivgen.printing import text

    d = solved.derivations[0]
    assert text(d.result) == "X'*(sigma(X*w) - y)"
    assert any("S11" in s.rules for b in d.blocks for s in b.steps)


def test_diagonal_products_merge():
    solved = solve(problem("""
        variables: {x: [n], y: [n], z: [n]}
        function: diag(x)*diag(y)*z
        wrt: [z]
        """))
    d = solved.derivations[0]
    assert any("S10" in s.rules for b in d.blocks for s in b.steps)


def test_wrong_jacobian_is_rejected():
    p = problem("""
        variables: {X: [m, n]}
        function: X'*X
        wrt: [X]
        """)
    ctx = build_context(p)
    good = derive_jacobian(ctx.function, "X", ctx.variables["X"], ctx.where, ctx.assume, "numerator")
    x = E.Sym("X", ctx.variables["X"])
    wrong = E.kron(E.Eye("n"), E.tp(x))  # the Kᵀ(Xᵀ ⊗ I) half is missing
    blocks = good.blocks[:-1] + [Block("jac", "X", [Step(wrong, ("J0",))])]
    bad = Derivation("X", blocks, wrong, kind="jacobian", function=good.function, layout="numerator")
    with pytest.raises(VerificationError):
        verify_jacobian(ctx, bad)


def test_hessian_of_a_non_scalar_function_is_a_clean_error():
    from derivgen.errors import UnsupportedError

    with pytest.raises(UnsupportedError, match="Hessian needs a scalar"):
        solve(problem("""
            variables: {A: [m, n], x: [n]}
            function: A*x
            wrt: [x]
            order: 2
            """))


# rules the tests above assert are cited, for tests/test_rules.py's every-rule check
CITED = {r for _, _, rules in CASES for r in rules} | {"L2", "H1", "Y1", "Y2", "S10", "S11"}
