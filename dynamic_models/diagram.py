"""A server-rendered SVG diagram of entities and their relations (DM-4)."""

from __future__ import annotations

from django.utils.html import escape

from dynamic_models.registries import field_type_registry

BOX_WIDTH, ROW_HEIGHT, HEADER, GAP_X, GAP_Y, COLUMNS = 240, 18, 26, 90, 50, 3


def render_svg(bodies: dict[str, dict]) -> str:
    """Draw each entity as a box listing its fields; relations and user links as arrows."""
    boxes, y_by_column = {}, [20] * COLUMNS
    for index, (key, body) in enumerate(sorted(bodies.items())):
        column = index % COLUMNS
        height = HEADER + ROW_HEIGHT * len(body["fields"]) + 8
        boxes[key] = (20 + column * (BOX_WIDTH + GAP_X), y_by_column[column], height)
        y_by_column[column] += height + GAP_Y
    width = 20 + COLUMNS * (BOX_WIDTH + GAP_X)
    height = max(y_by_column) + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="er-diagram" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#2f6fdf"/></marker></defs>']
    for key, body in sorted(bodies.items()):
        x, y, box_height = boxes[key]
        for row, spec in enumerate(body["fields"]):
            target = field_type_registry.get(spec["type"]).diagram_target(spec)
            if target in boxes:
                tx, ty, _h = boxes[target]
                sy = y + HEADER + ROW_HEIGHT * row + 12
                start_x, end_x = (x + BOX_WIDTH, tx) if tx > x else (x, tx + BOX_WIDTH)
                if tx == x:
                    start_x, end_x = x + BOX_WIDTH, tx + BOX_WIDTH
                parts.append(f'<path d="M {start_x} {sy} C {start_x + (40 if start_x >= end_x - 1 else 60)} {sy}, '
                             f'{end_x + (40 if tx == x else (-60 if tx > x else 60))} {ty + 13}, {end_x} {ty + 13}" '
                             f'fill="none" stroke="#2f6fdf" stroke-width="1.5" marker-end="url(#arrow)">'
                             f'<title>{escape(key)}.{escape(spec["key"])} → {escape(target)}</title></path>')
        parts.append(f'<g class="entity" data-entity="{escape(key)}">'
                     f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{box_height}" rx="6" fill="#fff" '
                     f'stroke="#8aa4c8"/><rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{HEADER}" rx="6" '
                     f'fill="#2f6fdf"/><text x="{x + 10}" y="{y + 17}" fill="#fff" font-weight="bold">'
                     f'{escape(body.get("label") or key)} ({escape(key)})</text>')
        for row, spec in enumerate(body["fields"]):
            ty = y + HEADER + ROW_HEIGHT * row + 14
            kind = field_type_registry.get(spec["type"]).diagram_label(spec)
            marker = "*" if spec.get("required") else ""
            parts.append(f'<text x="{x + 10}" y="{ty}">{escape(spec["key"])}{marker}</text>'
                         f'<text x="{x + BOX_WIDTH - 10}" y="{ty}" text-anchor="end" fill="#6b7785">{escape(kind)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
