"""The bottom floor: concepts every other package shares (charts theme, ...).

Modules here import nothing from the rest of quantdesk.
"""
