"""`segmail mailings validate`: every variant rendered against a sample contact before a real run."""

from __future__ import annotations

from pathlib import Path


def test_shipped_mailings_validate(capsys):
    from segmail.cli.main import main

    assert main(["mailings", "validate"]) == 0
    assert "ok: newsletter (de, en, fr)" in capsys.readouterr().out


def test_validate_reports_an_undefined_template_variable(tmp_path, monkeypatch, capsys):
    import shutil

    from segmail.cli.main import main

    include = tmp_path / "include"
    shutil.copytree(Path(__file__).resolve().parents[3] / "include", include)
    template = include / "templates" / "newsletter" / "fr.html"
    template.write_text(template.read_text().replace("{{ contact.first_name }}", "{{ contact.firstname }}"))
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    assert main(["mailings", "validate"]) == 1
    err = capsys.readouterr().err
    assert "newsletter.yaml variant fr: UndefinedError" in err and "firstname" in err
