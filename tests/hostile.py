"""A generated corpus of hostile problem files: ``CASES`` is a list of (name, content).

Content is text (written as UTF-8) or bytes (written as is); the special content
``FIFO`` asks for a named pipe instead of a file.  Add a case by appending to a list
below; tests/test_hostile.py runs each one through ``validate`` and ``solve``.

``CLI_CASES`` are command lines: (name, problem content, arguments, expected exit code),
the arguments with placeholders ``{problem}`` (the file), ``{dir}`` (its directory, which
also holds a FIFO ``fifo``, a directory ``adir`` and a link ``devnull`` to /dev/null) and
data files made by ``DATA_FILES``.
"""
from __future__ import annotations

FIFO = object()

BASE = """\
id: hostile
dims: {D: 3, H: 4, C: 2}
symbols:
  x: {shape: [D], role: input}
  t: {shape: [C], role: target, kind: onehot}
  W: {shape: [H, D], role: param}
  V: {shape: [C, H], role: param}
forward:
  h: tanh(W @ x)
  y: softmax(V @ h)
loss:
  l: -sum(t * log(y))
"""


def with_check(check: str) -> str:
    return BASE + "check:\n" + "".join(f"  {line}\n" for line in check.splitlines())


def billion_laughs(levels: int, width: int = 9) -> str:
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\nid: bomb\nsymbols: *a{levels}\nloss: {{l: x}}\n"


def merge_bomb(levels: int) -> str:
    lines = ["m0: &m0 {k0: 1, k1: 2}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}, *m{i - 1}, *m{i - 1}], q{i}: 1}}")
    return "\n".join(lines) + f"\nid: merge\nsymbols: {{x: {{<<: *m{levels}, shape: [], role: param}}}}\n" \
                              "loss: {l: x}\n"


def many_unknown_keys(n: int) -> str:
    return BASE + "".join(f"bogus{i}: {i}\n" for i in range(n))


def near_miss_names(n: int) -> str:
    """n symbols, and latex names that each miss one by a letter (a suggestion for each)."""
    symbols = "".join(f"  weight_{i:05d}: {{shape: [], role: param}}\n" for i in range(n))
    latex = "".join(f"  weight_{i:05d}x: w\n" for i in range(n))
    return f"id: near\nsymbols:\n{symbols}loss:\n  l: weight_00000\nlatex:\n{latex}"


def near_miss_nodes(n: int) -> str:
    """n forward nodes, the last one using a misspelt name (a suggestion among n)."""
    nodes = "".join(f"  node_{i:05d}: x + 1\n" for i in range(n))
    return f"id: near\nsymbols:\n  x: {{shape: [], role: param}}\nforward:\n{nodes}loss:\n  l: node_0000x\n"


def chain(n: int) -> str:
    nodes = "".join(f"  z{i}: z{i - 1} + x\n" for i in range(1, n))
    return (f"id: chain\ndims: {{D: 3}}\nsymbols:\n  x: {{shape: [D], role: input}}\n"
            f"  w: {{shape: [D], role: param}}\nforward:\n  z0: w * x\n{nodes}loss:\n  l: sum(z{n - 1})\n")


def with_loss(expr: str) -> str:
    return BASE.replace("-sum(t * log(y))", expr)


SCALAR = """\
id: s
symbols:
  x: {shape: [], role: input}
  w: {shape: [], role: param}
  s: {shape: [], role: param}
forward:
  z: w * x
loss:
  l: %s
"""


def question(q: str) -> str:
    return SCALAR % "z ** 2" + "questions:\n  - " + q + "\n"


def nested(depth: int) -> str:
    return "id: deep\nsymbols: " + "[" * depth + "]" * depth + "\nloss: {l: x}\n"


CASES: list[tuple[str, object]] = [
    # YAML: expansion, size, shape of the tree
    ("billion_laughs_7", billion_laughs(7)),
    ("billion_laughs_9", billion_laughs(9)),
    ("merge_bomb_12", merge_bomb(12)),
    ("recursive_alias", "a: &a [*a]\nid: r\nsymbols: *a\nloss: {l: x}\n"),
    ("nested_flow_5000", nested(5000)),
    ("nested_block_200", "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v\n"),
    ("huge_file", BASE + "#" * (2 * 1024 * 1024) + "\n"),
    ("many_values", "id: v\nsymbols: {x: {shape: [], role: param}}\nloss: {l: x}\ndescription: ["
                    + ", ".join(["1"] * 300_000) + "]\n"),
    ("many_unknown_keys", many_unknown_keys(50_000)),
    ("not_utf8", BASE.encode() + b"title: caf\xe9\n"),
    ("utf16", BASE.encode("utf-16")),
    ("nul_bytes", BASE + "title: a\x00b\n"),
    ("fifo", FIFO),
    ("python_tag", BASE + "title: !!python/object/apply:os.system ['echo hi']\n"),
    ("empty", ""),
    ("only_comment", "# nothing\n"),
    # names and counts
    ("near_miss_names_3000", near_miss_names(3000)),
    ("near_miss_names_9000", near_miss_names(9000)),
    ("near_miss_nodes_9000", near_miss_nodes(9000)),
    ("near_miss_nodes_99", near_miss_nodes(99)),
    ("chain_at_the_limit", chain(100)),
    ("chain_10000", chain(10_000)),
    ("many_dims", "id: d\ndims: {" + ", ".join(f"D{i}: 2" for i in range(5000)) + "}\n"
                  "symbols: {x: {shape: [], role: param}}\nloss: {l: x}\n"),
    ("many_questions", BASE + "questions:\n" + "".join(f"  - {{id: q{i}, kind: grad, wrt: h}}\n"
                                                       for i in range(5000))),
    ("dim_huge", BASE.replace("H: 4", "H: 100000000000000000000")),
    # values
    ("values_nan", BASE.replace("  V: {shape: [C, H], role: param}",
                                "  V: {shape: [C, H], role: param}\n  s: {shape: [], role: param, values: [.nan]}")),
    ("values_inf", BASE.replace("  V: {shape: [C, H], role: param}",
                                "  V: {shape: [C, H], role: param}\n  s: {shape: [], role: param, values: [.inf, 0]}")),
    ("index_computed", BASE.replace("-sum(t * log(y))", "-sum(t * log(y)) + h[1+2]")),
    ("index_real", BASE.replace("-sum(t * log(y))", "-sum(t * log(y)) + h[l]")),
    ("used_before_defined", BASE.replace("tanh(W @ x)", "tanh(W @ x) + y[0]")),
    ("self_reference", BASE.replace("tanh(W @ x)", "tanh(W @ h)")),
    # check:
    ("check_n_huge", with_check("data: {generator: moons, n: 1000000000000}")),
    ("check_width_huge", with_check("data: {generator: moons}\ndims: {H: 1000000000}")),
    ("check_hidden_huge", with_check("data: {generator: moons}\nhidden: {dim: H, values: [2, 1000000000]}")),
    ("check_epochs_huge", with_check("data: {generator: moons}\ntrain: {epochs: 1000000000000}")),
    ("check_steps_huge", with_check("data: {generator: moons, n: 100000}\ntrain: {epochs: 10000}")),
    ("check_runs_huge", with_check("data: {generator: moons}\nrepeats: 1000\ntrain: {lr: [0.1, 0.2, 0.3]}")),
    ("check_classes_huge", with_check("data: {generator: spirals, classes: 1000000000}")),
    ("check_lr_typo", with_check("data: {generator: moons}\ntrain: {lrr: 0.1}")),
    ("check_lr_nan", with_check("data: {generator: moons}\ntrain: {lr: .nan}")),
    ("check_expect_inf", with_check("data: {generator: moons}\nexpect: {final_loss_below: .inf}")),
    ("check_data_fifo", with_check("data: {dataset: mnist, path: /dev/stdin}")),
    ("check_data_device", with_check("data: {dataset: mnist, path: /dev/zero}")),
    ("check_data_missing", with_check("data: {dataset: mnist, path: no/such/file.npz}")),
    ("check_seed_huge", with_check("data: {generator: moons, seed: 100000000000000000000000}")),
    ("check_many_unknown", with_check("data: {generator: moons}\n" + "".join(f"k{i}: 1\n" for i in range(5000)))),
    ("check_H_100000", with_check("data: {generator: moons}\ndims: {H: 100000}")),
    ("check_n_power", with_check("data: {generator: moons, n: 10**12}")),
    ("check_range_long", with_check("data: {generator: sinusoid, range: [" + ", ".join(["0"] * 100000) + "]}")),
    ("check_range_nested", with_check("data: {generator: sinusoid, range: [[0, 1], [2, 3]]}")),
    ("check_range_huge_numbers", with_check("data: {generator: sinusoid, range: [-1e308, 1e308]}")),
    ("check_frequency_nan", with_check("data: {generator: sinusoid, frequency: .nan}")),
    ("check_test_n_huge", with_check("data: {generator: moons}\ntest: {generator: moons, n: 1000000000000}")),
    ("check_test_fifo", with_check("data: {generator: moons}\ntest: {dataset: csv, path: /dev/stdin, target: y}")),
    ("check_test_device", with_check("data: {generator: moons}\ntest: {dataset: mnist, path: /dev/zero}")),
    ("check_test_is_data_alias", with_check("data: &d {generator: moons, n: 100}\ntest: *d")),
    ("check_test_fraction_tiny", with_check("data: {generator: moons, n: 2}\ntest: {fraction: 1e-300}")),
    ("check_test_spirals_classes_huge", with_check("data: {generator: spirals}\ntest: {generator: spirals, classes: 1000000000}")),
    # constants: undefined, too large, too long
    ("loss_over_literal_zero", with_loss("sum(h) ** 2 / 0")),
    ("const_log_zero", with_loss("-sum(t * log(y)) + log(0)")),
    ("const_log_negative", with_loss("-sum(t * log(y)) + log(-1)")),
    ("const_sqrt_negative", with_loss("-sum(t * log(y)) + sqrt(-1)")),
    ("const_zero_to_negative", with_loss("-sum(t * log(y)) + 0 ** -1")),
    ("const_exp_overflow", SCALAR % "w * exp(1000)"),
    ("int_4000_digits", with_loss("-sum(t * log(y)) + " + "9" * 4000)),
    ("float_5000_digits", with_loss("-sum(t * log(y)) + 1" + "0" * 5000 + ".0")),
    ("float_overflow", with_loss("-sum(t * log(y)) + 1e99999")),
    ("float_underflow", with_loss("-sum(t * log(y)) + 1e-99999")),
    ("power_tower", with_loss("-sum(t * log(y)) + 10**10**10")),
    ("power_tower_9", with_loss("-sum(t * log(y)) + 9**9**9**9")),
    ("power_tower_parenthesised", with_loss("-sum(t * log(y)) + ((9**9)**9)**9")),
    ("power_float_huge_exponent", with_loss("-sum(t * log(y)) + 1.0001**(10**15)")),
    ("power_of_a_symbol_huge", SCALAR % "w ** 100000000"),
    ("deep_parentheses", with_loss("(" * 5000 + "1" + ")" * 5000)),
    ("long_expression", with_loss(" + ".join(["sum(h)"] * 20000))),
    # literal sizes
    ("eye_huge", with_loss("-sum(t * log(y)) + sum(eye(100000) @ ones(100000))")),
    ("onehot_huge", with_loss("-sum(t * log(y)) + sum(onehot(1, 1000000000))")),
    ("ones_power", with_loss("-sum(t * log(y)) + sum(ones(10**9))")),
    ("ones_huge", with_loss("-sum(t * log(y)) + sum(ones(1000000000))")),
    ("ones_million_constant", with_loss("-sum(t * log(y)) + sum(ones(1000000))")),
    # undefined, but not constant
    ("undefined_not_constant", SCALAR % "w * x / (s - s)"),
    ("undefined_not_constant_vector", with_loss("sum(W @ x) / (sum(h) - sum(h))")),
    ("log_of_zero_expression", SCALAR % "log(s - s) * w"),
    ("sqrt_of_negative_expression", SCALAR % "sqrt(-(s*s) - 1) * w"),
    ("zero_over_zero", SCALAR % "(w - w) / (s - s)"),
    ("exp_overflow_everywhere", SCALAR % "exp(exp(exp(w * 1000)))"),
    ("values_make_log_undefined", SCALAR.replace("role: param}\nforward", "role: param, values: [0, -1]}\nforward")
     % "log(s) * z"),
    # kinks that never move, large constants: nothing is wrong (exit 0)
    ("relu_of_a_constant", SCALAR % "relu(0) * w"),
    ("abs_of_zero", SCALAR % "abs(w - w)"),
    ("large_constant_in_loss", with_loss("-sum(t * log(y)) + 1e15")),
    # shapes and questions
    ("index_a_scalar", SCALAR % "z[0]"),
    ("softmax_of_a_scalar", SCALAR % "softmax(w)"),
    ("identity_over_zero", question("{id: q, kind: identity, lhs: s / (s - s), rhs: 1, vars: {s: []}}")),
    ("identity_over_literal_zero", question("{id: q, kind: identity, lhs: s / 0, rhs: 1, vars: {s: []}}")),
    ("limit_to_one_over_zero", question("{id: q, kind: limit, expr: tanh(s), var: s, to: 1/0}")),
    ("limit_to_float_overflow", question("{id: q, kind: limit, expr: tanh(s), var: s, to: 1e99999}")),
    ("limit_to_long_float", question("{id: q, kind: limit, expr: tanh(s), var: s, to: '1" + "0" * 5000 + ".5'}")),
    ("limit_to_nan", question("{id: q, kind: limit, expr: tanh(s), var: s, to: .nan}")),
    ("limit_infinite", question("{id: q, kind: limit, expr: exp(s), var: s, to: oo}")),
    ("jacobian_of_a_matrix", BASE.replace("H: 4", "H: 64") + "questions:\n  - {id: j, kind: jacobian, of: h, wrt: W}\n"),
    ("dims_at_the_limit", BASE.replace("D: 3, H: 4, C: 2", "D: 64, H: 64, C: 64")),
    ("dims_past_the_limit", BASE.replace("D: 3, H: 4, C: 2", "D: 64, H: 65, C: 64")),
]

CHECKED = with_check("data: {generator: moons, n: 200}\ntrain: {epochs: 2}")


def npz_declaring(shape: tuple) -> bytes:
    """A small .npz whose x_train header declares ``shape`` of float64 (a zip bomb needs no more:
    the reader allocates what the header says before it reads)."""
    import io
    import zipfile

    import numpy as np

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("x_train.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})
            f.write(bytes(1 << 20))
        with z.open("y_train.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<i8", "fortran_order": False, "shape": shape[:1]})
            f.write(bytes(8 * shape[0]))
    return out.getvalue()


DATA_FILES = {"bomb.npz": lambda: npz_declaring((400_000, 784))}

CLI_CASES: list[tuple[str, object, list[str], int]] = [
    ("vectors_seed_negative", BASE, ["vectors", "--seed", "-1", "{problem}"], 2),
    ("vectors_seed_huge", BASE, ["vectors", "--seed", "9" * 30, "{problem}"], 2),
    ("vectors_out_fifo", BASE, ["vectors", "-o", "{dir}/fifo", "{problem}"], 2),
    ("vectors_out_directory", BASE, ["vectors", "-o", "{dir}/adir", "{problem}"], 2),
    ("vectors_out_device", BASE, ["vectors", "-o", "{dir}/devnull", "{problem}"], 2),
    ("vectors_out_under_a_file", BASE, ["vectors", "-o", "{problem}/x.json", "{problem}"], 2),
    ("validate_fifo", FIFO, ["validate", "{problem}"], 2),
    ("validate_directory", BASE, ["validate", "{dir}/adir"], 2),
    ("curve_under_a_file", CHECKED, ["solve", "--curve", "{problem}/c.csv", "{problem}"], 2),
    ("curve_with_no_train", CHECKED, ["solve", "--no-train", "--curve", "{dir}/c.csv", "{problem}"], 2),
    ("curve_without_check", BASE, ["solve", "--curve", "{dir}/c.csv", "{problem}"], 2),
    ("plot_without_check", BASE, ["solve", "--plot", "{dir}/c.png", "{problem}"], 2),
    ("training_diverges", with_check("data: {generator: moons, n: 200}\ntrain: {lr: 1000000000, epochs: 3}"),
     ["solve", "{problem}"], 0),
    ("epochs_huge", with_check("data: {generator: moons}\ntrain: {epochs: 1000000000000}"), ["solve", "{problem}"], 2),
    ("range_of_all_floats", with_check("data: {generator: sinusoid, range: [-1e308, 1e308]}"), ["solve", "{problem}"], 2),
    ("npz_bomb", with_check("data: {dataset: mnist, path: bomb.npz}"), ["solve", "{problem}"], 2),
    ("vectors_undefined_loss", SCALAR % "w * x / (s - s)", ["vectors", "{problem}"], 0),
    ("solve_undefined_loss", SCALAR % "w * x / (s - s)", ["solve", "{problem}"], 2),
]
