"""Forms of the registry's portal pages. They only coerce what the browser sends: the services validate."""

from __future__ import annotations

from django import forms
from django.conf import settings

from .choices import ModelTask
from .services import MAX_TAGS

ALIAS_PREFIX, VERSION_PREFIX = "alias:", "version:"


class ModelSearchForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=100)
    task = forms.ChoiceField(required=False, choices=[("", "All tasks"), *ModelTask.choices])


class RegisterModelForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="1 to 100 lowercase letters, digits, '.', '_' or '-'; a letter or digit first."
    )
    task = forms.ChoiceField(choices=ModelTask.choices, help_text="The pipeline task every version must serve.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(required=False, help_text=f"Comma-separated, at most {MAX_TAGS}.")

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class VersionUploadForm(forms.Form):
    artifact = forms.FileField(label="Archive", allow_empty_file=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read per form, not at import: the limits are settings.
        self.fields["artifact"].help_text = (
            "A .zip or .tar.gz of a save_pretrained folder (config.json, tokenizer, weights as safetensors); at most "
            f"{settings.REGISTRY_MAX_ARTIFACT_MB:,} MB, {settings.REGISTRY_MAX_FILES:,} files and "
            f"{settings.REGISTRY_MAX_UNCOMPRESSED_MB:,} MB unpacked. It becomes the next version and is validated by "
            "loading it."
        )


def target_choices(aliases, usable: list[int]) -> list[tuple[str, str]]:
    """The model's aliases (production first), then its usable version numbers."""
    aliases = sorted(aliases, key=lambda alias: (alias.name != "production", alias.name))
    choices = [(f"{ALIAS_PREFIX}{alias.name}", f"{alias.name} ({alias.split_text})") for alias in aliases]
    return choices + [(f"{VERSION_PREFIX}{number}", f"v{number}") for number in usable]


class TargetField(forms.ChoiceField):
    """An alias or a version number of the model, as the services take them: ``{"alias": …, "number": …}``."""

    def clean(self, value) -> dict:
        value = super().clean(value)
        if value.startswith(ALIAS_PREFIX):
            return {"alias": value.removeprefix(ALIAS_PREFIX), "number": None}
        return {"alias": None, "number": int(value.removeprefix(VERSION_PREFIX))}


class InferenceJobForm(forms.Form):
    file = forms.FileField(label="Input file", allow_empty_file=True)
    target = TargetField(label="Run with")
    name = forms.CharField(required=False, max_length=200, help_text="Optional; shown in the job list.")

    def __init__(self, *args, aliases, usable: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = target_choices(aliases, usable)
        # Read per form, not at import: the limits are settings.
        self.fields["file"].help_text = (
            "CSV with a header naming a text column (and a label column for an evaluation), or JSON Lines of "
            f'{{"text": …, "label": …}}; at most {settings.REGISTRY_JOB_MAX_FILE_MB:,} MB and '
            f"{settings.REGISTRY_JOB_MAX_ROWS:,} rows. With a label on every row the job is an evaluation."
        )


class AliasMoveForm(forms.Form):
    """Which alias to point at which version; the confirmation page posts it back with ``confirm``."""

    alias = forms.CharField(max_length=50, initial="staging")
    version = forms.TypedChoiceField(coerce=int, label="To version")

    def __init__(self, *args, usable: list[int], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(number, f"v{number}") for number in usable]
