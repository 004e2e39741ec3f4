"""responder/web/charts.py: SVG charts drawn on the server (pure; no database, no app)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from responder.web.charts import HEIGHT, Series, bar_chart, line_chart, nice_max

NS = "{http://www.w3.org/2000/svg}"


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))  # raises unless well-formed


def _titled(svg: ET.Element, tag: str) -> dict[str, ET.Element]:
    found = {}
    for element in svg.iter(f"{NS}{tag}"):
        title = element.find(f"{NS}title")
        if title is not None:
            found[title.text] = element
    return found


def test_a_bar_chart_is_labelled_scaled_and_patterned():
    svg = _parse(
        bar_chart(
            "vol",
            "New and completed tasks per day",
            "Tasks created and completed each day.",
            ["20 Nov", "21 Nov", "22 Nov"],
            [Series("Created", (4, 1, 0)), Series("Completed", (1, 1, 0))],
        )
    )
    assert svg.get("role") == "img"
    assert svg.get("viewBox") == f"0 0 400 {HEIGHT}" and svg.get("width") is None
    title, desc = svg.find(f"{NS}title"), svg.find(f"{NS}desc")
    assert title.text == "New and completed tasks per day"
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert all(e.get("style") is None for e in svg.iter())  # the CSP allows no inline style
    bars = _titled(svg, "rect")
    assert set(bars) == {
        f"{series}, {day}: {n}"
        for series, values in (("Created", (4, 1, 0)), ("Completed", (1, 1, 0)))
        for day, n in zip(("20 Nov", "21 Nov", "22 Nov"), values, strict=True)
    }
    # Heights in proportion (the axis tops at 5 for a largest value of 4).
    four, one = bars["Created, 20 Nov: 4"], bars["Created, 21 Nov: 1"]
    assert abs(float(four.get("height")) - 4 * float(one.get("height"))) < 0.5
    assert float(bars["Created, 22 Nov: 0"].get("height")) == 0
    # Not colour alone: the second series is hatched (a pattern), and the legend names both.
    assert bars["Completed, 20 Nov: 1"].get("fill") == "url(#vol-hatch)"
    assert svg.find(f".//{NS}pattern").get("id") == "vol-hatch"
    texts = [t.text for t in svg.iter(f"{NS}text")]
    assert "Created" in texts and "Completed" in texts and "20 Nov" in texts


def test_a_line_chart_leaves_gaps_where_nothing_was_measured():
    labels = [f"{d} Nov" for d in range(1, 8)]
    svg = _parse(
        line_chart(
            "in-time", "In time", "Percent in time.", labels, [100, None, 50, 0, None, None, 75]
        )
    )
    points = _titled(svg, "circle")
    assert set(points) == {"1 Nov: 100%", "3 Nov: 50%", "4 Nov: 0%", "7 Nov: 75%"}
    lines = svg.findall(f"{NS}polyline")
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2  # 3 Nov - 4 Nov only
    y = {k: float(v.get("cy")) for k, v in points.items()}
    assert y["1 Nov: 100%"] < y["3 Nov: 50%"] < y["4 Nov: 0%"]


def test_hostile_words_are_escaped_and_empty_or_long_data_still_draws():
    svg = _parse(
        bar_chart(
            'x"><script>',
            "<script>alert(1)</script>",
            "A & B",
            ["<b>", "]]>"],
            [Series("</svg>", (0, 0))],
        )
    )
    assert svg.find(f"{NS}title").text == "<script>alert(1)</script>"
    assert svg.find(f".//{NS}script") is None
    assert svg.find(f"{NS}desc").text == "A & B"
    # A year of weeks: 53 buckets, labels thinned so they do not overlap.
    labels = [f"w{i}" for i in range(53)]
    svg = _parse(bar_chart("y", "t", "d", labels, [Series("Created", tuple(range(53)))]))
    axis = [t.text for t in svg.iter(f"{NS}text") if t.text in labels]
    assert 1 < len(axis) <= 8
    assert len(_titled(svg, "rect")) == 53  # every bar still has its number
    svg = _parse(line_chart("e", "t", "d", [], []))
    assert svg.findall(f"{NS}circle") == []
    assert [nice_max(v) for v in (0, 1, 3, 7, 10, 11, 240, 5001)] == [
        1,
        1,
        5,
        10,
        10,
        20,
        500,
        10000,
    ]
