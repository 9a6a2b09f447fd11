"""Streamlit glue shared by the pages: app state, settings, cached engine wrappers, widgets, figures."""
