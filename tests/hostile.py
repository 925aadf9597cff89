"""A generated corpus of hostile problem files: ``CASES`` is a list of (name, content).

Content is text (written as UTF-8) or bytes (written as is); the special content
``FIFO`` asks for a named pipe instead of a file.  Add a case by appending to a list
below; tests/test_hostile.py runs each one through ``validate`` and ``solve``.
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
]
