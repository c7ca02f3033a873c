"""The follow-links setting of training appears in the generated Advanced form as a checkbox."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox

from chroma_studio.gui.widgets.config_form import ConfigFormWidget


def test_follow_links_is_a_checkbox_in_the_advanced_form(qtbot) -> None:
    form = ConfigFormWidget()
    qtbot.addWidget(form)
    row = form.rows["follow_links"]
    assert row.info.label == "Follow links"
    assert isinstance(row.editor, QCheckBox)
    assert not row.editor.isChecked()
