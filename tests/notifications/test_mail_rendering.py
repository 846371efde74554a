"""Emails go out through a real SMTP server with a plain-text and an HTML body."""

from apps.core.mail import email_send

from ..mail_server import html_body, text_body


def test_email_reaches_the_smtp_server_with_both_bodies(smtp_server, settings, tmp_path):
    templates = tmp_path / "email"
    templates.mkdir()
    (templates / "hello.subject.txt").write_text("Hello {{ name }}\n")
    (templates / "hello.txt").write_text("Hi {{ name }}, see {{ portal_url }}.\n")
    (templates / "hello.html").write_text(
        '{% extends "email/base.html" %}{% block content %}<p>Hi {{ name }}</p>{% endblock %}'
    )
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    settings.PORTAL_URL = "https://opsdeck.example.com"

    email_send(name="hello", to=["ada@example.com"], context={"name": "Ada"})

    (message,) = smtp_server.wait_for(1, to="ada@example.com")
    assert message["Subject"] == "[Opsdeck] Hello Ada"
    assert "Hi Ada, see https://opsdeck.example.com." in text_body(message)
    assert "<p>Hi Ada</p>" in html_body(message)
    assert "Opsdeck" in html_body(message)
