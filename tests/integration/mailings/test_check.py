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


def test_validate_fails_without_an_unsubscribe_link(monkeypatch, capsys):
    from segmail.cli.main import main

    monkeypatch.delenv("SEGMAIL_PUBLIC_URL")
    monkeypatch.delenv("SEGMAIL_UNSUBSCRIBE_MAILTO")
    assert main(["mailings", "validate"]) == 1
    err = capsys.readouterr().err
    assert "newsletter.yaml: no unsubscribe link can be built: set SEGMAIL_PUBLIC_URL" in err


def test_validate_fails_without_a_signing_key(monkeypatch, capsys):
    from segmail.cli.main import main

    monkeypatch.delenv("AIRFLOW_CONN_SEGMAIL_SIGNING")
    assert main(["mailings", "validate"]) == 1
    assert "no signing key for unsubscribe links" in capsys.readouterr().err


def test_the_old_static_list_unsubscribe_names_the_new_settings(tmp_path, monkeypatch, capsys):
    import shutil

    from segmail.cli.main import main

    include = tmp_path / "include"
    shutil.copytree(Path(__file__).resolve().parents[3] / "include", include)
    definition = include / "mailings" / "newsletter.yaml"
    definition.write_text(definition.read_text() + 'list_unsubscribe: "<mailto:u@example.com>"\n')
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    assert main(["mailings", "validate"]) == 1
    err = capsys.readouterr().err
    assert "list_unsubscribe is no longer supported" in err and "SEGMAIL_PUBLIC_URL" in err


def test_a_dkim_block_without_its_key_connection_fails_validation(tmp_path, monkeypatch, capsys):
    import shutil

    from segmail.cli.main import main

    include = tmp_path / "include"
    shutil.copytree(Path(__file__).resolve().parents[3] / "include", include)
    definition = include / "mailings" / "newsletter.yaml"
    definition.write_text(
        definition.read_text()
        + "dkim: {domain: autohaus-demo.example, selector: s2026, key_conn_id: segmail_dkim_missing}\n"
    )
    monkeypatch.setenv("SEGMAIL_INCLUDE_DIR", str(include))
    assert main(["mailings", "validate"]) == 1
    assert (
        "newsletter.yaml dkim: DKIM key connection 'segmail_dkim_missing' is missing"
        in capsys.readouterr().err
    )
