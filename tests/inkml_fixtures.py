"""Build CROHME-style InkML files for tests (importable: `from inkml_fixtures import build_inkml`)."""

INKML_NAMESPACE = "http://www.w3.org/2003/InkML"


def build_inkml(
    traces,
    *,
    ui=None,
    truth=None,
    writer=None,
    groups=None,
    namespace=INKML_NAMESPACE,
    trace_ids=None,
    point_sep=", ",
    value_sep=" ",
    number="{:g}",
):
    """Return the bytes of a CROHME-style InkML file.

    `traces` is a list of point lists (2 or 3 values per point). `groups` is a list of
    ``(label, [trace index, ...])`` written as expression-level traceGroups with truth
    annotations inside an outer "Segmentation" group; None writes nothing.
    """
    from xml.sax.saxutils import escape

    xmlns = f' xmlns="{namespace}"' if namespace else ""
    width = len(traces[0][0]) if traces and traces[0] else 2
    channels = "".join(f'<channel name="{name}" type="decimal"/>' for name in "XYT"[:width])
    parts = [f"<ink{xmlns}>", f"<traceFormat>{channels}</traceFormat>"]
    if truth is not None:
        parts.append(f'<annotation type="truth">{escape(truth)}</annotation>')
    if ui is not None:
        parts.append(f'<annotation type="UI">{escape(ui)}</annotation>')
    if writer is not None:
        parts.append(f'<annotation type="writer">{escape(writer)}</annotation>')
    ids = trace_ids or [str(index) for index in range(len(traces))]
    for trace_id, points in zip(ids, traces):
        text = point_sep.join(value_sep.join(number.format(v) for v in point) for point in points)
        parts.append(f'<trace id="{trace_id}">{text}</trace>')
    if groups is not None:
        parts.append('<traceGroup xml:id="g"><annotation type="truth">Segmentation</annotation>')
        for index, (label, members) in enumerate(groups):
            views = "".join(f'<traceView traceDataRef="{ids[m]}"/>' for m in members)
            parts.append(
                f'<traceGroup xml:id="g{index}"><annotation type="truth">{escape(label)}'
                f"</annotation>{views}</traceGroup>"
            )
        parts.append("</traceGroup>")
    parts.append("</ink>")
    return "\n".join(parts).encode("utf-8")


def build_writer_folder(folder, writers):
    """Write one CROHME expression per entry of `writers` (None: no writer annotation).

    Each expression holds two labelled symbols, an ``x`` and a ``1``. Returns `folder`.
    """
    folder.mkdir(parents=True)
    for index, writer in enumerate(writers):
        traces = [[(0, 0), (10, 10)], [(10, 0), (0, 10)], [(20, 0), (20, 12)]]
        (folder / f"expr_{index}.inkml").write_bytes(
            build_inkml(traces, ui=f"em_{index}", writer=writer, groups=[("x", [0, 1]), ("1", [2])])
        )
    return folder
