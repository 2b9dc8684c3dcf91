"""Pure drawings of a DAG: ASCII for terminals, Mermaid for GitHub, DOT for graphviz."""

from __future__ import annotations

import textwrap

from dagspec import graph
from dagspec.dagfile import Dag, Feature, Layer
from dagspec.words import counted

WIDTH = 80


def ascii_dag(dag: Dag, *, width: int = WIDTH) -> str:
    """Layers, and their features, in a topological order of the whole DAG, so that nothing
    is drawn above what it depends on (``graph.grouped_order``: a layer whose features are
    interleaved with another layer's is drawn in parts, the later ones ``(continued)``);
    under each, its features and what each waits for.

    A feature lists its own ``depends_on``; what it inherits from its layer's
    ``depends_on`` is shown once, on the layer's line, as ``after: layer L0``.
    """
    longest = len(graph.waves(dag.deps))
    out = [
        f"{dag.name}: {counted(len(dag.features), 'feature')} in "
        f"{counted(len(dag.layers), 'layer')} "
        f"(the longest chain of dependencies is {counted(longest, 'spec')})"
    ]
    seen: set[str] = set()
    for layer, features in _runs(dag):
        out.append("")
        out.extend(_layer_lines(layer, features, width, continued=layer.id in seen))
        seen.add(layer.id)
    return "\n".join(out) + "\n"


def _runs(dag: Dag) -> list[tuple[Layer, list[Feature]]]:
    """The layers with their features, in the order they are drawn."""
    layers = {layer.id: layer for layer in dag.layers}
    of = {feature.id: layer.id for layer in dag.layers for feature in layer.features}
    runs = graph.grouped_order(dag.deps, of)
    return [(layers[layer], [dag.features[f] for f in ids]) for layer, ids in runs]


def _layers_in_order(dag: Dag) -> list[tuple[int, Layer, list[Feature]]]:
    """Each layer once, with its index in the file and every feature, in the order of
    ``_runs`` (a layer drawn in parts: where it begins), for Mermaid and DOT."""
    index = {layer.id: i for i, layer in enumerate(dag.layers)}
    order: dict[str, tuple[int, Layer, list[Feature]]] = {}
    for layer, features in _runs(dag):
        order.setdefault(layer.id, (index[layer.id], layer, []))[2].extend(features)
    return list(order.values())


def _layer_lines(
    layer: Layer, features: list[Feature], width: int, *, continued: bool
) -> list[str]:
    title = f"[{layer.id}]" + (f" {layer.name}" if layer.name else "")
    lines = [title + " (continued)" if continued else title]
    if layer.depends_on and not continued:
        after = ", ".join(layer.depends_on)
        lines = _wrap(
            f"{title}  <- after layer{'s' if len(layer.depends_on) > 1 else ''} ", after, width
        )
    name_width = min(max(len(f.id) for f in features), 36)
    for index, feature in enumerate(features):
        branch = "`-" if index == len(features) - 1 else "|-"
        lines += _feature_lines(feature, f"  {branch} ", name_width, width)
    return lines


def _feature_lines(feature: Feature, prefix: str, name_width: int, width: int) -> list[str]:
    head = f"{prefix}{feature.id}"
    if not feature.depends_on:
        return [head]
    head = head.ljust(len(prefix) + name_width) + "  <- "
    if len(head) > width // 2:
        return [
            f"{prefix}{feature.id}",
            *_wrap(" " * len(prefix) + "   <- ", _deps(feature), width),
        ]
    return _wrap(head, _deps(feature), width)


def _deps(feature: Feature) -> str:
    return ", ".join(feature.depends_on)


def _wrap(first: str, text: str, width: int) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=" " * len(first),
        break_on_hyphens=False,
        break_long_words=False,
    )


def mermaid(dag: Dag) -> str:
    """A ``flowchart`` with one subgraph per layer; arrows point from a dependency to its
    dependents, the way the work flows. Layers and features are written in the order the
    ASCII drawing has them."""
    ids = _node_ids(dag)
    layers = _layers_in_order(dag)
    out = ["flowchart TD"]
    for index, layer, features in layers:
        title = f"{layer.id}: {layer.name}" if layer.name else layer.id
        out.append(f'  subgraph L{index}["{_mermaid_text(title)}"]')
        out += [f'    {ids[f.id]}["{_mermaid_text(f.id)}"]' for f in features]
        out.append("  end")
    layer_ids = {layer.id: f"L{i}" for i, layer in enumerate(dag.layers)}
    for _, layer, features in layers:
        out += [f"  {layer_ids[dep]} --> {layer_ids[layer.id]}" for dep in layer.depends_on]
        for feature in features:
            out += [f"  {ids[dep]} --> {ids[feature.id]}" for dep in feature.depends_on]
    return "\n".join(out) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def _node_ids(dag: Dag) -> dict[str, str]:
    return {feature_id: f"f{i}" for i, feature_id in enumerate(dag.features)}


def dot(dag: Dag) -> str:
    """A ``digraph`` with one cluster per layer; a layer dependency is drawn once, between
    the clusters (``compound=true``). Layers and features are written in the order the
    ASCII drawing has them."""
    layers = _layers_in_order(dag)
    out = [f"digraph {_dot_text(dag.name)} {{", "  compound=true;", "  node [shape=box];"]
    for index, layer, features in layers:
        title = f"{layer.id}: {layer.name}" if layer.name else layer.id
        out.append(f"  subgraph cluster_{index} {{")
        out.append(f"    label={_dot_text(title)};")
        out += [f"    {_dot_text(f.id)};" for f in features]
        out.append("  }")
    clusters = {layer.id: (index, features[0].id) for index, layer, features in layers}
    for _, layer, features in layers:
        index, anchor = clusters[layer.id]
        for dep in layer.depends_on:
            dep_index, dep_anchor = clusters[dep]
            out.append(
                f"  {_dot_text(dep_anchor)} -> {_dot_text(anchor)} "
                f"[ltail=cluster_{dep_index}, lhead=cluster_{index}];"
            )
        for feature in features:
            out += [f"  {_dot_text(d)} -> {_dot_text(feature.id)};" for d in feature.depends_on]
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
