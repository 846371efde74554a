"""Settings of the list benchmark's portal: the embedded-default settings plus the bare baseline view's URL."""

from project.settings.local import *  # noqa: F403

ROOT_URLCONF = "benchmarks.lists_urls"
