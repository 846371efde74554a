"""Stored JSON shown in the admin as tables and plain text, escaped, never as raw JSON."""

from apps.core.admin_display import json_display


def test_an_object_is_a_key_value_table_with_keys_read_as_words():
    html = json_display({"tables_compared": 12_345, "ok": False, "reason": None, "duration_seconds": 1.25})

    assert html.startswith('<table class="json-table"><tbody>')
    assert '<th scope="row">Tables compared</th><td>12,345</td>' in html
    assert '<th scope="row">Ok</th><td>no</td>' in html
    assert '<th scope="row">Reason</th><td>—</td>' in html
    assert '<th scope="row">Duration seconds</th><td>1.25</td>' in html


def test_names_as_keys_stay_as_stored_under_the_given_headers():
    html = json_display({"django_celery_beat": "0019_alter_periodictasks_options"}, headers=("App", "Latest migration"))

    assert "<thead><tr><th>App</th><th>Latest migration</th></tr></thead>" in html
    assert '<th scope="row">Django celery beat</th>' in html
    kept = json_display({"django_celery_beat": "0019"}, label_keys=False)
    assert '<th scope="row">django_celery_beat</th><td>0019</td>' in kept


def test_a_list_of_plain_values_is_one_line_and_a_list_of_objects_a_table_with_a_column_per_key():
    assert json_display(["BertForSequenceClassification", "BertModel"]) == "BertForSequenceClassification, BertModel"

    html = json_display([{"check": "checksum", "ok": True}, {"check": "restore", "ok": False, "detail": "no space"}])

    assert (
        '<thead><tr><th scope="col">Check</th><th scope="col">Ok</th><th scope="col">Detail</th></tr></thead>' in html
    )
    assert "<tr><td>checksum</td><td>yes</td><td>—</td></tr>" in html
    assert "<tr><td>restore</td><td>no</td><td>no space</td></tr>" in html


def test_nested_values_are_nested_tables_and_text_is_escaped():
    html = json_display({"evaluation": {"accuracy": 0.8512345678, "label": "<script>x</script>"}})

    assert '<th scope="row">Evaluation</th><td><table class="json-table">' in html
    assert "<td>0.851235</td>" in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>" not in html


def test_nothing_stored_is_a_dash():
    assert json_display({}) == json_display([]) == json_display(None) == "—"
