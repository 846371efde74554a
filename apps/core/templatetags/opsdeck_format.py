"""Dates and numbers in templates, written as apps/core/formatting.py writes them everywhere."""

from django import template

from .. import formatting

register = template.Library()

register.filter("local_time", formatting.local_time)
register.filter("number", formatting.number)
