"""paperzoo: research papers as declarative pipelines. One package per paper, shared code in
core (plumbing), nn (models and flow maths) and data (datasets)."""
