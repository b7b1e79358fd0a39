"""The SVG charts: accessible (title, desc naming the figures, text labels), escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from newsletter.render.charts import Series, grouped_bars, line_chart

SVG = "{http://www.w3.org/2000/svg}"


def test_line_chart_states_its_figures_in_words_and_labels() -> None:
    svg = line_chart(
        "Delivery and bounce rates",
        ["#1 W47", "#2 W48"],
        [Series("delivered", [0.98, 0.5]), Series("bounced", [0.02, None])],
    )
    root = ET.fromstring(svg)
    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "Delivery and bounce rates"
    assert desc is not None and desc.text is not None
    assert "delivered: #1 W47 98.0%, #2 W48 50.0%" in desc.text
    assert "#2 W48 no data" in desc.text
    labels = "".join(t.text or "" for t in root.iter(f"{SVG}text"))
    assert "98.0%" in labels and "#2 W48" in labels and "bounced" in labels
    ids = root.get("aria-labelledby", "").split()
    assert [title.get("id"), desc.get("id")] == ids


def test_a_hostile_story_title_stays_text() -> None:
    svg = grouped_bars(
        "Clicks", ['<script>alert(1)</script>"&'], [Series("bg", [3.0]), Series("ka", [1.0])]
    )
    assert "<script>" not in svg
    root = ET.fromstring(svg)  # still well-formed
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert '<script>alert(1)</script>"&' in texts
    assert "bg 3" in texts and "ka 1" in texts


def test_empty_charts_say_so() -> None:
    desc = ET.fromstring(line_chart("t", [], [])).find(f"{SVG}desc")
    assert desc is not None and desc.text == "no editions yet"
