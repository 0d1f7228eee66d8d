/* derivgen: the self-check boxes of an HTML problem sheet (derivgen/selfcheck.py), offline.

   A student types an answer in derivgen's expression syntax (DESIGN §2). math.js's parser reads
   it (math.js, loaded before this file from the same assets directory); this file walks the
   syntax tree itself, with derivgen's meaning of every construct: `*` the matrix product (a
   scaling when one side is a scalar), `'` and `^T` the transpose, `.* ./ .^` elementwise,
   `1`, `I`, `0` of the size that fits where they stand, the functions of FUNCTIONS below,
   `sum(t, body)` over the samples of the problem's families (`x_t`, one sample inside the sum;
   `sum(A)` stays the sum of the entries). The
   student's text is never evaluated by math.js (no `evaluate`, no `compile`), and the math.js
   instance has import, createUnit, evaluate, parse, compile, simplify and derivative disabled.

   The answer is evaluated at the random points the page carries (the values of the problem's
   names and the verified result's value there, drawn by derivgen's sampler) and judged as
   derivgen/judge.py judges it: the same tolerance, the same slip hints (transpose, factor 2 or
   1/2, sign, right only for symmetric matrices, right only at one size). Nothing is fetched
   from the network; the page may be opened from file://.

   In node (the tests), `require("derivgen-check.js")(require("mathjs"))` gives the checker
   without the DOM: {check(text, data, messages) -> verdict, FUNCTIONS}. */
(function (root, factory) {
  "use strict";
  if (typeof module === "object" && module.exports) {
    module.exports = factory;
    return;
  }
  if (typeof root.math === "undefined") {
    console.error("derivgen: math.js did not load; the self-check boxes stay hidden");
    return;
  }
  var api = factory(root.math);
  root.derivgenCheck = api;
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { api.attach(document); });
  } else {
    api.attach(document);
  }
})(this, function (mathjs) {
  "use strict";

  // --- a math.js instance for untrusted input (math.js's security advice) --------------------
  var math = mathjs.create(mathjs.all);
  var parse = math.parse;
  var linalg = { multiply: math.multiply, inv: math.inv, det: math.det, kron: math.kron };
  (function disable() {
    var off = {};
    ["import", "createUnit", "evaluate", "parse", "compile", "simplify", "derivative", "resolve"].forEach(function (name) {
      off[name] = function () { throw new Error("derivgen: math.js's " + name + " is disabled"); };
    });
    math.import(off, { override: true });
  })();

  // --- the functions an answer may call: the one table to extend ------------------------------
  // takes: "any" | "square" | "vector"; gives: "same" | "scalar" | a function of the argument's
  // [rows, cols] giving the result's; f maps argument values (2-D arrays) to the value.
  // `ew` is an elementwise function of one number (then takes "any", gives "same").
  function scalar(v) { return [[v]]; }
  function entries(a) { var out = []; a.forEach(function (row) { row.forEach(function (v) { out.push(v); }); }); return out; }
  var FUNCTIONS = {
    tr: { takes: "square", gives: "scalar", f: function (a) { var s = 0; for (var i = 0; i < a.length; i++) s += a[i][i]; return scalar(s); } },
    det: { takes: "square", gives: "scalar", f: function (a) { return scalar(linalg.det(a)); } },
    logdet: { takes: "square", gives: "scalar", f: function (a) { return scalar(Math.log(Math.abs(linalg.det(a)))); } },
    inv: { takes: "square", gives: "same", f: function (a) { return linalg.inv(a); } },
    exp: { ew: Math.exp }, log: { ew: Math.log }, sqrt: { ew: Math.sqrt }, tanh: { ew: Math.tanh },
    sigma: { ew: function (x) { return 1 / (1 + Math.exp(-x)); } },
    sin: { ew: Math.sin }, cos: { ew: Math.cos }, tan: { ew: Math.tan }, arctan: { ew: Math.atan },
    abs: { ew: Math.abs }, sign: { ew: Math.sign }, log1p: { ew: Math.log1p },
    relu: { ew: function (x) { return x > 0 ? x : 0; } },
    softplus: { ew: function (x) { return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)); } },
    sum: { takes: "any", gives: "scalar", f: function (a) { return scalar(entries(a).reduce(function (s, v) { return s + v; }, 0)); } },
    norm: { takes: "any", gives: "scalar", f: function (a) { return scalar(Math.sqrt(entries(a).reduce(function (s, v) { return s + v * v; }, 0))); } },
    step: { ew: function (x) { return x > 0 ? 1 : 0; } },
    // softmax and logsumexp of a matrix: of each column (logsumexp gives a row)
    softmax: { takes: "any", gives: "same", f: function (a) {
      return transpose(transpose(a).map(function (col) {
        var m = Math.max.apply(null, col), w = col.map(function (v) { return Math.exp(v - m); });
        var s = w.reduce(function (t, v) { return t + v; }, 0);
        return w.map(function (v) { return v / s; });
      }));
    } },
    logsumexp: { takes: "any", gives: function (s) { return [1, s[1]]; }, f: function (a) {
      return [transpose(a).map(function (col) {
        var m = Math.max.apply(null, col);
        return m + Math.log(col.reduce(function (t, v) { return t + Math.exp(v - m); }, 0));
      })];
    } },
    // max(A, 0) is relu(A) (read in Typer.call)
    max: { args: 2, relu: true },
    // diag(x): the diagonal matrix of a vector; diag(A) of a square matrix: its diagonal, a column
    diag: { takes: "vector or square", gives: function (s) { return s[1] === 1 ? [s[0], s[0]] : [s[0], 1]; },
      f: function (a) {
        var n = a.length, out = zeros(n, a[0].length === 1 ? n : 1);
        for (var i = 0; i < n; i++) { if (a[0].length === 1) out[i][i] = a[i][0]; else out[i][0] = a[i][i]; }
        return out;
      } },
    vec: { takes: "any", gives: function (s) { return [s[0] * s[1], 1]; }, f: function (a) {
      var out = []; for (var j = 0; j < a[0].length; j++) for (var i = 0; i < a.length; i++) out.push([a[i][j]]); return out;
    } },
    kron: { args: 2, takes: "any", gives: function (s, t) { return [s[0] * t[0], s[1] * t[1]]; },
      f: function (a, b) { return linalg.kron(a, b); } },
    // sized constants: their arguments are dimensions
    ones: { dims: [1, 2] }, eye: { dims: [1] }, commutation: { dims: [2] },
  };

  // --- small helpers on 2-D arrays ------------------------------------------------------------
  function zeros(r, c) { var out = []; for (var i = 0; i < r; i++) { out.push(new Array(c).fill(0)); } return out; }
  function fill(r, c, v) { var out = zeros(r, c); out.forEach(function (row) { row.fill(v); }); return out; }
  function eye(n) { var out = zeros(n, n); for (var i = 0; i < n; i++) out[i][i] = 1; return out; }
  function map(a, f) { return a.map(function (row) { return row.map(f); }); }
  function zip(a, b, f) { return a.map(function (row, i) { return row.map(function (v, j) { return f(v, b[i][j]); }); }); }
  function transpose(a) { return a[0].map(function (_, j) { return a.map(function (row) { return row[j]; }); }); }
  function matmul(a, b) { return linalg.multiply(a, b); }
  function shapeOf(a) { return [a.length, a.length ? a[0].length : 0]; }
  function frob(a) { var s = 0; a.forEach(function (row) { row.forEach(function (v) { s += v * v; }); }); return Math.sqrt(s); }
  function dot(a, b) { var s = 0; a.forEach(function (row, i) { row.forEach(function (v, j) { s += v * b[i][j]; }); }); return s; }

  // --- shapes: dimensions are numbers or unknowns, unified as the answer is typed -------------
  function Dims() { this.link = []; }
  Dims.prototype.fresh = function () { this.link.push(null); return { v: this.link.length - 1 }; };
  Dims.prototype.find = function (d) {
    while (typeof d === "object" && this.link[d.v] !== null) d = this.link[d.v];
    return d;
  };
  Dims.prototype.unify = function (a, b) {
    a = this.find(a); b = this.find(b);
    if (typeof a === "number" && typeof b === "number") return a === b;
    if (typeof a === "object" && typeof b === "object") { if (a.v !== b.v) this.link[a.v] = b; return true; }
    if (typeof a === "object") this.link[a.v] = b; else this.link[b.v] = a;
    return true;
  };
  Dims.prototype.shape = function (s) { return [this.find(s[0]), this.find(s[1])]; };
  Dims.prototype.known = function (s) { s = this.shape(s); return typeof s[0] === "number" && typeof s[1] === "number"; };
  Dims.prototype.isScalar = function (s) { s = this.shape(s); return s[0] === 1 && s[1] === 1; };
  Dims.prototype.unifyShape = function (s, t) {
    var d = this, saved = d.link.slice();
    if (d.unify(s[0], t[0]) && d.unify(s[1], t[1])) return true;
    d.link = saved;
    return false;
  };

  function Unreadable(key, fields) { this.key = key; this.fields = fields || {}; }

  // --- typing: math.js's syntax tree → a typed tree with derivgen's meaning -------------------
  function Typer(data, point, messages) {
    this.data = data; this.point = point; this.M = messages; this.dims = new Dims();
    this.active = [];  // the indices of the sums over samples being typed (derivgen/parse.py, _Typer.active)
  }
  Typer.prototype.fail = function (key, fields) { throw new Unreadable(key, fields); };
  Typer.prototype.sizeText = function (s) {
    var shape = this.dims.shape(s), point = this.point;
    if (shape[0] === 1 && shape[1] === 1) return this.M.check_scalar;
    function dim(v) {
      if (typeof v !== "number") return "?";
      var names = Object.keys(point.sizes).filter(function (k) { return point.sizes[k] === v; });
      return names.length === 1 ? names[0] : String(v);
    }
    return dim(shape[0]) + "×" + dim(shape[1]);
  };
  Typer.prototype.text = function (node) {
    var s = node.toString({ parenthesis: "keep", implicit: "hide" });
    return s.length > 60 ? s.slice(0, 57) + "…" : s;
  };
  Typer.prototype.make = function (k, shape, extra) {
    var t = { k: k, shape: shape, flex: false };
    for (var key in extra) t[key] = extra[key];
    return t;
  };
  Typer.prototype.type = function (node) {
    var self = this;
    switch (node.type) {
      case "ParenthesisNode":
        return this.type(node.content);
      case "ConstantNode":
        if (typeof node.value !== "number" || !isFinite(node.value)) this.fail("check_construct", { text: this.text(node) });
        if (node.value === 0 || node.value === 1) {
          return this.make("const", [this.dims.fresh(), this.dims.fresh()], { val: node.value, flex: true, number: true });
        }
        return this.make("num", [1, 1], { val: node.value, number: true });
      case "SymbolNode":
        return this.symbol(node.name);
      case "OperatorNode":
        if (node.implicit) this.fail("check_implicit", { text: this.text(node) });
        return this.operator(node);
      case "FunctionNode":
        return this.call(node);
      default:
        this.fail("check_construct", { text: this.text(node) });
    }
    return null; // unreachable
  };
  Typer.prototype.symbol = function (name) {
    var env = this.point.env, families = this.data.families || {};
    if (Object.prototype.hasOwnProperty.call(families, name)) {  // x_t: one sample, inside sum(t, …) only
      var index = families[name];
      if (this.active.indexOf(index) < 0) this.fail("check_sample", { name: name, index: index });
      return this.make("sample", shapeOf(env[name][0]), { name: name, index: index });
    }
    if (Object.prototype.hasOwnProperty.call(env, name)) {
      return this.make("var", shapeOf(env[name]), { name: name });
    }
    if (name === "I") {
      var n = this.dims.fresh();
      return this.make("eye", [n, n], { flex: true });
    }
    if (this.data.dims.indexOf(name) >= 0) return this.make("dim", [1, 1], { name: name, number: false });
    if (Object.prototype.hasOwnProperty.call(FUNCTIONS, name)) this.fail("check_function_name", { name: name });
    this.fail("check_unknown_name", { name: name, names: Object.keys(this.data.names).concat(this.data.dims).join(", ") });
    return null;
  };
  function isRowOnes(t) { return t.k === "tp" && t.x.k === "const" && t.x.val === 1; }
  function hasRowOnes(t) {
    if (isRowOnes(t)) return true;
    if (t.k === "neg") return hasRowOnes(t.x);
    if (["mul", "scale", "div", "add", "sub"].indexOf(t.k) >= 0) return hasRowOnes(t.a) || hasRowOnes(t.b);
    return false;
  }
  Typer.prototype.operator = function (node) {
    var fn = node.fn, args = node.args, self = this;
    if (fn === "unaryPlus") return this.type(args[0]);
    if (fn === "unaryMinus") {
      var x = this.type(args[0]);
      return this.make("neg", x.shape, { x: x, flex: x.flex, number: x.number });
    }
    if (fn === "ctranspose" || fn === "transpose") return this.transposed(this.type(args[0]));
    if (fn === "pow" || fn === "dotPow") return this.power(node, fn === "dotPow");
    if (["add", "subtract", "multiply", "divide", "dotMultiply", "dotDivide"].indexOf(fn) < 0) {
      this.fail("check_construct", { text: this.text(node) });
    }
    var a = this.type(args[0]), b = this.type(args[1]);
    var fields = { a: this.text(args[0]), b: this.text(args[1]) };
    var shapes = function () { fields.sa = self.sizeText(a.shape); fields.sb = self.sizeText(b.shape); return fields; };
    var number = a.number && b.number;
    if (fn === "add" || fn === "subtract") {
      if (!this.dims.unifyShape(a.shape, b.shape)) this.fail("check_add", shapes());
      return this.make(fn === "add" ? "add" : "sub", a.shape, { a: a, b: b, number: number });
    }
    if (fn === "divide") {
      if (!this.dims.unifyShape(b.shape, [1, 1])) this.fail("check_divide", shapes());
      // `1/N` (like `1/2`) takes its size from where it stands, as in derivgen (parse.py, _left_flexible)
      return this.make("div", a.shape, { a: a, b: b, number: number, flex: a.flex });
    }
    if (fn === "dotMultiply" || fn === "dotDivide") {
      var k = fn === "dotMultiply" ? "had" : "hdiv";
      if (this.dims.isScalar(b.shape) && !this.dims.isScalar(a.shape)) return this.make(k, a.shape, { a: a, b: b, scalarB: true });
      if (k === "had" && this.dims.isScalar(a.shape) && !this.dims.isScalar(b.shape)) return this.make(k, b.shape, { a: a, b: b, scalarA: true });
      if (!this.dims.unifyShape(a.shape, b.shape)) this.fail("check_elementwise", shapes());
      return this.make(k, a.shape, { a: a, b: b });
    }
    return this.product(a, b, shapes, number);
  };
  Typer.prototype.product = function (a, b, shapes, number) {
    // derivgen's reading of a product (derivgen/parse.py, _Typer.t_mul): a scaling when one
    // side is a scalar; a constant 1, 0 or I takes the size that makes the product fit (a
    // lone `1` or `0` beside a matrix is the number, `1'` is a row of ones, `I` is square).
    var d = this.dims, flex = (a.flex || a.number) && (b.flex || b.number) && (a.flex || b.flex);
    var self = this;
    // a scalar times a flexible constant (`N*1`) stays flexible, as derivgen reads it
    function scale(s, m) { d.unifyShape(s.shape, [1, 1]); return self.make("scale", m.shape, { a: s, b: m, flex: flex || m.flex, number: number }); }
    function matrix() {
      if (!d.unify(a.shape[1], b.shape[0])) self.fail("check_multiply", shapes());
      return self.make("mul", [a.shape[0], b.shape[1]], { a: a, b: b, flex: flex });
    }
    var aKnown = d.known(a.shape) && !a.flex, bKnown = d.known(b.shape) && !b.flex;
    if (d.isScalar(a.shape) && !a.flex) return scale(a, b);
    if (d.isScalar(b.shape) && !b.flex) return scale(b, a);
    if (a.flex && bKnown) {
      var p = d.find(b.shape[0]);
      if (isRowOnes(a)) { d.unify(a.shape[1], p); return matrix(); }
      if (a.k === "eye") { d.unify(a.shape[0], p); return matrix(); }
      if (hasRowOnes(a)) { d.unify(a.shape[1], p); return matrix(); }
      return scale(a, b);
    }
    if (b.flex && aKnown) {
      var q = d.find(a.shape[1]);
      if (isRowOnes(b)) { if (!d.unify(b.shape[0], q)) self.fail("check_multiply", shapes()); return matrix(); }
      if (b.k === "eye") { d.unify(b.shape[0], q); return matrix(); }
      if (hasRowOnes(b)) { d.unify(b.shape[0], q); return matrix(); }
      if (q === 1) return scale(b, a);
      d.unify(b.shape[0], q);
      return matrix();
    }
    if (a.number && !a.flex) return scale(a, b);
    if (b.number && !b.flex) return scale(b, a);
    return matrix();
  };
  Typer.prototype.transposed = function (x) {
    return this.make("tp", [x.shape[1], x.shape[0]], { x: x, flex: x.flex, number: x.number });
  };
  Typer.prototype.exponent = function (node) {
    // a number, -number, (a numeric expression), a scalar name
    while (node.type === "ParenthesisNode") node = node.content;
    if (node.type === "SymbolNode") {
      var t = this.symbol(node.name);
      if (!this.dims.isScalar(t.shape)) this.fail("check_exponent", { text: this.text(node) });
      return t;
    }
    var t2 = this.type(node);
    if (!t2.number) this.fail("check_exponent", { text: this.text(node) });
    this.dims.unifyShape(t2.shape, [1, 1]);
    return t2;
  };
  Typer.prototype.power = function (node, elementwise) {
    var baseNode = node.args[0], expNode = node.args[1];
    if (!elementwise && expNode.type === "SymbolNode" && expNode.name === "T" &&
        !Object.prototype.hasOwnProperty.call(this.point.env, "T")) {
      return this.transposed(this.type(baseNode));
    }
    var base = this.type(baseNode), e = this.exponent(expNode);
    if (elementwise) return this.make("hpow", base.shape, { x: base, e: e });
    if (!this.dims.isScalar(base.shape)) {
      if (!this.dims.unify(base.shape[0], base.shape[1])) {
        this.fail("check_square", { name: "A^k", a: this.text(baseNode), sa: this.sizeText(base.shape) });
      }
    }
    return this.make("pow", base.shape, { x: base, e: e, number: base.number && e.number });
  };
  Typer.prototype.dimension = function (node) {
    while (node.type === "ParenthesisNode") node = node.content;
    if (node.type === "ConstantNode" && Number.isInteger(node.value) && node.value > 0) {
      var stand = this.point.stand_ins || {};
      return Object.prototype.hasOwnProperty.call(stand, String(node.value)) ? stand[String(node.value)] : node.value;
    }
    if (node.type === "SymbolNode" && Object.prototype.hasOwnProperty.call(this.point.sizes, node.name)) return this.point.sizes[node.name];
    if (node.type === "OperatorNode" && node.fn === "multiply" && !node.implicit) {
      var a = this.dimension(node.args[0]), b = this.dimension(node.args[1]);
      return a && b ? a * b : null;
    }
    return null;
  };
  Typer.prototype.call = function (node) {
    var name = node.fn && node.fn.type === "SymbolNode" ? node.fn.name : null;
    if (name === null) this.fail("check_construct", { text: this.text(node) });
    if (!Object.prototype.hasOwnProperty.call(FUNCTIONS, name)) {
      if (Object.prototype.hasOwnProperty.call(this.point.env, name)) this.fail("check_not_function", { name: name });
      this.fail("check_unsupported", { name: name, names: Object.keys(FUNCTIONS).sort().join(", ") });
    }
    var spec = FUNCTIONS[name], self = this, args = node.args;
    if (name === "sum" && args.length === 2) return this.sumOver(args[0], args[1]);
    if (spec.relu) {  // max(A, 0) or max(0, A): the elementwise maximum with zero
      var zero = args.map(function (a) { return a.type === "ConstantNode" && Number(a.value) === 0; });
      if (args.length !== 2 || zero[0] === zero[1]) this.fail("check_max", {});
      var typedArg = this.type(args[zero[0] ? 1 : 0]);
      return this.make("fn", typedArg.shape, { name: "relu", xs: [typedArg] });
    }
    if (spec.dims) {
      if (spec.dims.indexOf(args.length) < 0) this.fail("check_arguments", { name: name, n: spec.dims.join(" or ") });
      var sizes = args.map(function (a) {
        var v = self.dimension(a);
        if (!v) self.fail("check_dimensions", { name: name });
        return v;
      });
      var shape = name === "eye" ? [sizes[0], sizes[0]] : name === "ones" ? [sizes[0], sizes.length > 1 ? sizes[1] : 1]
        : [sizes[0] * sizes[1], sizes[0] * sizes[1]];
      return this.make("sized", shape, { name: name, sizes: sizes });
    }
    var arity = spec.args || 1;
    if (args.length !== arity) this.fail("check_arguments", { name: name, n: arity });
    var typed = args.map(function (a) { return self.type(a); });
    if (spec.ew) return this.make("fn", typed[0].shape, { name: name, xs: typed });
    var s = this.dims.shape(typed[0].shape), d = this.dims;
    var fields = { name: name, a: this.text(args[0]), sa: this.sizeText(typed[0].shape) };
    if (spec.takes === "square" && !d.unify(s[0], s[1])) this.fail("check_square", fields);
    if (spec.takes === "vector or square" && !d.known(s)) {
      d.unify(s[1], 1);  // diag(1): the identity; an unknown argument is taken as a vector
    }
    s = d.shape(typed[0].shape);
    if (spec.takes === "vector or square" && s[1] !== 1 && s[0] !== s[1]) this.fail("check_vector", fields);
    var out;
    if (spec.gives === "scalar") out = [1, 1];
    else if (spec.gives === "same") out = typed[0].shape;
    else {
      typed.forEach(function (t) { t.shape.forEach(function (x) { if (typeof d.find(x) !== "number") d.unify(x, 1); }); });
      out = spec.gives.apply(null, typed.map(function (t) { return d.shape(t.shape); }));
    }
    return this.make("fn", out, { name: name, xs: typed });
  };
  Typer.prototype.sumOver = function (first, body) {
    // sum(t, body): Σ over the samples t = 1..N (derivgen/parse.py, _Typer.sum_over); a body
    // without x_t is added N times, as derivgen reads it (N·body)
    var indices = this.data.indices || {};
    while (first.type === "ParenthesisNode") first = first.content;
    var index = first.type === "SymbolNode" ? first.name : null;
    if (index === null || !Object.prototype.hasOwnProperty.call(indices, index)) {
      var names = Object.keys(indices);
      if (names.length) this.fail("check_sum_index", { indices: names.join(", "), index: names[0] });
      this.fail("check_sum_no_index", {});
    }
    this.active.push(index);
    var x;
    try { x = this.type(body); } finally { this.active.pop(); }
    return this.make("sumover", x.shape, { x: x, index: index, flex: x.flex, number: false });
  };
  Typer.prototype.settle = function (t) {
    // unknown sizes left after typing (a lone `1`): the scalar, or a column
    var d = this.dims;
    (function walk(n) {
      n.shape = n.shape.map(function (x) { x = d.find(x); if (typeof x !== "number") { d.unify(x, 1); x = 1; } return x; });
      ["x", "a", "b", "e"].forEach(function (k) { if (n[k]) walk(n[k]); });
      (n.xs || []).forEach(walk);
    })(t);
    return t;
  };

  // --- evaluation of a typed tree ---------------------------------------------------------------
  function Evaluator(point, data) { this.point = point; this.data = data || {}; this.bound = {}; }
  Evaluator.prototype.count = function (index) {
    // the number of samples: a dimension symbol's size, or an integer (its stand-in when large)
    var n = (this.data.indices || {})[index], stand = this.point.stand_ins || {};
    if (typeof n === "string") return this.point.sizes[n];
    return Object.prototype.hasOwnProperty.call(stand, String(n)) ? stand[String(n)] : n;
  };
  Evaluator.prototype.ev = function (t) {
    var self = this, s = t.shape;
    switch (t.k) {
      case "num": return [[t.val]];
      case "const": return fill(s[0], s[1], t.val);
      case "eye": return eye(s[0]);
      case "dim": return [[this.point.sizes[t.name]]];
      case "var": return this.point.env[t.name];
      case "sample": return this.point.env[t.name][this.bound[t.index]];
      case "sumover": {
        var outer = this.bound[t.index], total = null;
        try {
          for (var j = 0, count = this.count(t.index); j < count; j++) {
            this.bound[t.index] = j;
            var term = this.ev(t.x);
            total = total === null ? term : zip(total, term, function (u, v) { return u + v; });
          }
        } finally { this.bound[t.index] = outer; }
        return total === null ? zeros(s[0], s[1]) : total;
      }
      case "neg": return map(this.ev(t.x), function (v) { return -v; });
      case "tp": return transpose(this.ev(t.x));
      case "add": return zip(this.ev(t.a), this.ev(t.b), function (u, v) { return u + v; });
      case "sub": return zip(this.ev(t.a), this.ev(t.b), function (u, v) { return u - v; });
      case "scale": { var c = this.ev(t.a)[0][0]; return map(this.ev(t.b), function (v) { return c * v; }); }
      case "mul": return matmul(this.ev(t.a), this.ev(t.b));
      case "div": { var den = this.ev(t.b)[0][0]; return map(this.ev(t.a), function (v) { return v / den; }); }
      case "had": case "hdiv": {
        var a = this.ev(t.a), b = this.ev(t.b), op = t.k === "had" ? function (u, v) { return u * v; } : function (u, v) { return u / v; };
        if (t.scalarB) { var sb = b[0][0]; return map(a, function (u) { return op(u, sb); }); }
        if (t.scalarA) { var sa = a[0][0]; return map(b, function (v) { return op(sa, v); }); }
        return zip(a, b, op);
      }
      case "hpow": { var k = this.ev(t.e)[0][0]; return map(this.ev(t.x), function (v) { return Math.pow(v, k); }); }
      case "pow": {
        var base = this.ev(t.x), p = this.ev(t.e)[0][0];
        if (s[0] === 1 && s[1] === 1) return [[Math.pow(base[0][0], p)]];
        p = Math.round(p);
        if (p < 0) { base = linalg.inv(base); p = -p; }
        var out = eye(s[0]);
        for (var i = 0; i < p; i++) out = matmul(out, base);
        return out;
      }
      case "sized": {
        if (t.name === "ones") return fill(s[0], s[1], 1);
        if (t.name === "eye") return eye(s[0]);
        var m = t.sizes[0], n = t.sizes[1], K = zeros(m * n, m * n);
        for (var r = 0; r < m; r++) for (var q = 0; q < n; q++) K[r * n + q][q * m + r] = 1;
        return K;
      }
      case "fn": {
        var spec = FUNCTIONS[t.name], values = t.xs.map(function (x) { return self.ev(x); });
        if (spec.ew) return map(values[0], spec.ew);
        return spec.f.apply(null, values);
      }
    }
    throw new Error("derivgen: no evaluation for " + t.k);
  };

  // --- judging: a port of derivgen/judge.py ------------------------------------------------------
  var TOLERANCE = 1e-7;
  function relError(got, ref) {
    var g = shapeOf(got), r = shapeOf(ref);
    if (g[0] !== r[0] || g[1] !== r[1]) return Infinity;
    var diff = frob(zip(got, ref, function (u, v) { return u - v; }));
    var err = diff / Math.max(frob(got), frob(ref), 1e-300);
    return isFinite(err) ? err : Infinity;
  }
  function allClose(pairs) {
    var errors = pairs.map(function (p) { return relError(p[0], p[1]); });
    var worst = errors.length ? Math.max.apply(null, errors) : Infinity;
    return errors.length > 0 && worst <= TOLERANCE;
  }
  function ratio(pairs) {
    var ratios = [];
    for (var i = 0; i < pairs.length; i++) {
      var g = pairs[i][0], r = pairs[i][1], gs = shapeOf(g), rs = shapeOf(r);
      if (gs[0] !== rs[0] || gs[1] !== rs[1]) return null;
      var rr = dot(r, r);
      if (!(rr > 0) || !isFinite(rr)) return null;
      ratios.push(dot(g, r) / rr);
    }
    if (!ratios.length) return null;
    var c = ratios[0];
    if (!ratios.every(function (x) { return Math.abs(x - c) <= 1e-6 * Math.max(1, Math.abs(c)); })) return null;
    if (!pairs.every(function (p) { return relError(p[0], map(p[1], function (v) { return c * v; })) <= TOLERANCE; })) return null;
    return c;
  }
  // Python's format(x, ".{p}g")
  function gformat(x, p) {
    if (!isFinite(x)) return x > 0 ? "inf" : x < 0 ? "-inf" : "nan";
    if (x === 0) return "0";
    var e = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(p)))));
    var trim = function (s) { return s.indexOf(".") >= 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s; };
    if (e < -4 || e >= p) {
      var parts = x.toExponential(p - 1).split("e");
      var exp = parseInt(parts[1], 10);
      return trim(parts[0]) + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
    }
    return trim(x.toFixed(Math.max(0, p - 1 - e)));
  }
  function format(template, fields) {
    return template.replace(/\{(\w+)\}/g, function (m, k) { return Object.prototype.hasOwnProperty.call(fields, k) ? String(fields[k]) : m; });
  }
  var FACTORS = [[2.0, "factor2", "slip_factor2"], [0.5, "half", "slip_half"], [-1.0, "sign", "slip_sign"],
                 [-2.0, "sign", "slip_sign2"], [-0.5, "sign", "slip_sign_half"]];
  function factorSlip(c, qualifier, M) {
    for (var i = 0; i < FACTORS.length; i++) {
      if (Math.abs(c - FACTORS[i][0]) <= 1e-6 * Math.abs(FACTORS[i][0])) {
        return { id: FACTORS[i][1], factor: FACTORS[i][0], what: M[FACTORS[i][2]],
                 message: format(M.slip_is, { what: M[FACTORS[i][2]], qualifier: qualifier }) };
      }
    }
    var what = format(M.slip_times, { c: gformat(c, 6) });
    return { id: "factor", factor: c, what: what, message: format(M.slip_is, { what: what, qualifier: qualifier }) };
  }
  function slipsAt(pairs, qualifier, M) {
    var slips = [], c = ratio(pairs);
    if (c !== null && Math.abs(c - 1) > 1e-6) slips.push(factorSlip(c, qualifier, M));
    var square = pairs.every(function (p) { var s = shapeOf(p[0]); return s[0] === s[1]; });
    if (square && pairs.length && !pairs.every(function (p) { return relError(transpose(p[0]), p[0]) <= TOLERANCE; })) {
      var flipped = pairs.map(function (p) { return [transpose(p[0]), p[1]]; });
      if (allClose(flipped)) {
        slips.push({ id: "transpose", message: format(M.slip_transpose, { qualifier: qualifier }) });
      } else {
        var k = ratio(flipped);
        if (k !== null && Math.abs(k - 1) > 1e-6) {
          var slip = factorSlip(k, "", M);
          slips.push({ id: "transpose", factor: k, message: format(M.slip_transpose_and, {
            what: slip.what.split(M.slip_the_result).join(M.slip_it), qualifier: qualifier }) });
        }
      }
    }
    return slips;
  }
  // a factor that is one of the sizes (judge.py _size_factor): N times the result, or the result over N
  function sizeFactor(general, pairs, M) {
    var per = pairs.map(function (p) { return ratio([p]); });
    if (!per.length || per.some(function (c) { return c === null; })) return null;
    var names = Object.keys(general[0].sizes).filter(function (d) {
      return general.every(function (p) { return Object.prototype.hasOwnProperty.call(p.sizes, d); });
    });
    names.sort(function (a, b) { var x = a.toLowerCase(), y = b.toLowerCase(); return x < y ? -1 : x > y ? 1 : 0; });
    for (var i = 0; i < names.length; i++) {
      var d = names[i], values = general.map(function (p) { return Number(p.sizes[d]); });
      if (values.every(function (v) { return v === values[0]; })) continue;
      var powers = [[1, "size_times", M.slip_size_times], [-1, "size_divided", M.slip_size_divided]];
      for (var j = 0; j < powers.length; j++) {
        var pw = powers[j][0];
        if (per.every(function (c, k) { var t = Math.pow(values[k], pw); return Math.abs(c - t) <= 1e-6 * Math.max(1, t); })) {
          return { id: powers[j][1], size: d, message: format(powers[j][2], { d: d }) };
        }
      }
    }
    return null;
  }
  function sizesText(sizes, M) {
    var keys = Object.keys(sizes);
    return keys.length ? keys.map(function (k) { return k + "=" + sizes[k]; }).join(", ") : M.slip_fixed_sizes;
  }
  function judge(points, M) {
    var general = points.filter(function (p) { return (p.kind || "general") === "general"; });
    var symmetrized = points.filter(function (p) { return p.kind === "symmetrized"; });
    var pairs = general.map(function (p) { return [p.got, p.ref]; });
    var out = { correct: allClose(pairs), slips: [], counterexample: null, checked: general.length };
    if (out.correct) return out;
    var errors = pairs.map(function (p) { return relError(p[0], p[1]); });
    var k = 0;
    errors.forEach(function (e, i) { var v = isFinite(e) ? e : 1e300, w = isFinite(errors[k]) ? errors[k] : 1e300; if (v > w) k = i; });
    out.counterexample = { sizes: general[k].sizes, relative_error: errors[k], kind: "general" };
    var slips = slipsAt(pairs, "", M);
    if (!slips.length) {
      var size = sizeFactor(general, pairs, M);
      if (size) slips.push(size);
    }
    if (!slips.length && symmetrized.length) {
      var symPairs = symmetrized.map(function (p) { return [p.got, p.ref]; });
      var names = [];
      symmetrized.forEach(function (p) { (p.symmetrized || []).forEach(function (n) { if (names.indexOf(n) < 0) names.push(n); }); });
      names.sort();
      var which = names.length ? names.join(M.slip_names_sep) : M.slip_square_matrices;
      if (allClose(symPairs)) {
        slips.push({ id: "symmetric_only", names: names,
                     message: format(names.length === 1 ? M.slip_symmetric_one : M.slip_symmetric_many, { names: which }) });
      } else {
        var q = format(names.length === 1 ? M.slip_when_one : M.slip_when_many, { names: which });
        slipsAt(symPairs, q, M).forEach(function (s) { s.names = names; slips.push(s); });
      }
    }
    if (!slips.length) {
      var groups = [], right = [], wrong = [];
      general.forEach(function (p, i) {
        var sorted = {};  // judge.py groups by the sorted sizes, and names them in that order
        Object.keys(p.sizes).sort().forEach(function (n) { sorted[n] = p.sizes[n]; });
        var key = JSON.stringify(sorted);
        var g = groups.filter(function (x) { return x.key === key; })[0];
        if (!g) { g = { key: key, sizes: sorted, ok: true }; groups.push(g); }
        g.ok = g.ok && errors[i] <= TOLERANCE;
      });
      groups.forEach(function (g) { (g.ok ? right : wrong).push(g.sizes); });
      if (right.length && wrong.length) {
        slips.push({ id: "size_only", message: format(M.slip_size_only, { right: sizesText(right[0], M), wrong: sizesText(wrong[0], M) }) });
      }
    }
    out.slips = slips;
    return out;
  }

  // --- checking one answer ---------------------------------------------------------------------
  // the sizes in `order` (as derivgen grade names them), then any others as they come
  function ordered(sizes, order) {
    var out = {};
    (order || []).forEach(function (k) { if (Object.prototype.hasOwnProperty.call(sizes, k)) out[k] = sizes[k]; });
    Object.keys(sizes).forEach(function (k) { if (!Object.prototype.hasOwnProperty.call(out, k)) out[k] = sizes[k]; });
    return out;
  }
  function capitalized(s) { return s.charAt(0).toUpperCase() + s.slice(1); }

  /** The verdict on `text` at the points of `data` (derivgen.selfcheck.result_data):
      {status: "right"|"wrong"|"unreadable", message, hints: [...], slips, counterexample}. */
  function check(text, data, M) {
    if (!String(text).trim()) return { status: "unreadable", message: M.check_empty, hints: [] };
    var tree;
    try {
      tree = parse(String(text));
    } catch (err) {
      var detail = String(err && err.message || err).replace(/^SyntaxError:\s*/, "");
      return unreadable(format(M.check_syntax, { detail: detail }), M);
    }
    var points = [];
    for (var i = 0; i < data.points.length; i++) {
      var point = data.points[i], typer = new Typer(data, point, M), typed;
      try {
        typed = typer.type(tree);
        var want = shapeOf(point.ref);
        typer.dims.unifyShape(typed.shape, want);  // a lone `1`, `I` or `0` takes the result's shape
        typer.settle(typed);
        if (typed.shape[0] !== want[0] || typed.shape[1] !== want[1]) {
          var swapped = typed.shape[0] === want[1] && typed.shape[1] === want[0];
          throw new Unreadable(swapped ? "check_shape_transposed" : "check_shape",
                               { got: typer.sizeText(typed.shape), want: typer.sizeText(want) });
        }
      } catch (err) {
        if (err instanceof Unreadable) return unreadable(format(M[err.key], err.fields), M);
        throw err;
      }
      var got;
      try {
        got = new Evaluator(point, data).ev(typed);
        if (!got.every(function (row) { return row.every(function (v) { return typeof v === "number"; }); })) throw new Error("not real");
      } catch (err) {
        got = fill(want[0], want[1], NaN);  // a singular matrix to invert: judged as a wrong value
      }
      points.push({ sizes: ordered(point.sizes, data.size_order), kind: point.kind, symmetrized: point.symmetrized,
                    ref: point.ref, got: got });
    }
    var verdict = judge(points, M);
    if (verdict.correct) {
      return { status: "right", message: format(M.check_right, { checked: verdict.checked }), hints: [], slips: [] };
    }
    var hints = [];
    var c = verdict.counterexample;
    if (c) {
      var at = Object.keys(c.sizes).length ? sizesText(c.sizes, M) : M.check_problem_sizes;
      hints.push(format(M.check_counterexample, { at: at, err: gformat(c.relative_error, 2) }));
    }
    verdict.slips.forEach(function (s) { hints.push(capitalized(s.message) + (/[.。？?]$/.test(s.message) ? "" : M.check_stop)); });
    if (!verdict.slips.length) hints.push(M.check_no_slip);
    return { status: "wrong", message: M.check_wrong, hints: hints, slips: verdict.slips, counterexample: c };
  }
  function unreadable(message, M) {
    return { status: "unreadable", message: format(M.check_unreadable, { message: message }), hints: [] };
  }

  // --- the boxes on the page ----------------------------------------------------------------------
  function attach(doc) {
    var boxes = doc.querySelectorAll(".derivgen .dg-selfcheck");
    for (var i = 0; i < boxes.length; i++) setUp(boxes[i]);
  }
  function readJSON(el) {
    try { return el ? JSON.parse(el.textContent) : null; } catch (err) { return null; }
  }
  function setUp(box) {
    if (box.getAttribute("data-ready") !== null) return;
    var rootEl = box.closest(".derivgen");
    var data = readJSON(box.querySelector("script.dg-selfcheck-data"));
    var M = readJSON(rootEl && rootEl.querySelector("script.dg-selfcheck-messages"));
    var input = box.querySelector("input"), out = box.querySelector(".dg-selfcheck-verdict");
    if (!data || !M || !input || !out) return;
    box.setAttribute("data-ready", "");
    box.hidden = false;
    box.addEventListener("submit", function (event) {
      event.preventDefault();
      var verdict;
      try {
        verdict = check(input.value, data, M);
      } catch (err) {
        verdict = unreadable(String(err && err.message || err), M);
      }
      show(out, verdict, input);
    });
    input.addEventListener("input", function () {
      if (out.getAttribute("data-status")) out.setAttribute("data-stale", "");
    });
  }
  // text with `code` spans, as the messages write them: text nodes and <code> elements, never markup
  function appendText(el, text) {
    text.split("`").forEach(function (piece, i) {
      if (!piece) return;
      if (i % 2) {
        var code = el.ownerDocument.createElement("code");
        code.textContent = piece;
        el.appendChild(code);
      } else {
        el.appendChild(el.ownerDocument.createTextNode(piece));
      }
    });
  }
  function show(out, verdict, input) {
    while (out.firstChild) out.removeChild(out.firstChild);
    out.setAttribute("data-status", verdict.status);
    out.removeAttribute("data-stale");
    out.className = "dg-selfcheck-verdict dg-selfcheck-" + verdict.status;
    var head = out.ownerDocument.createElement("p");
    head.className = "dg-selfcheck-message";
    var mark = out.ownerDocument.createElement("span");
    mark.className = "dg-selfcheck-mark";
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = verdict.status === "right" ? "✓" : verdict.status === "wrong" ? "✗" : "!";
    head.appendChild(mark);
    appendText(head, " " + verdict.message);
    out.appendChild(head);
    if (verdict.hints.length) {
      var list = out.ownerDocument.createElement("ul");
      list.className = "dg-selfcheck-hints";
      verdict.hints.forEach(function (h) {
        var li = out.ownerDocument.createElement("li");
        appendText(li, h);
        list.appendChild(li);
      });
      out.appendChild(list);
    }
    input.setAttribute("aria-invalid", verdict.status === "right" ? "false" : "true");
  }

  return { check: check, judge: judge, attach: attach, FUNCTIONS: FUNCTIONS, gformat: gformat };
});
