"""The application layer: what pages and the CLI call.

``runtime`` holds the process-wide objects (settings, catalog, runner, providers, store);
``compare`` starts, opens and steers comparisons; ``history``, ``evaluate``, ``hosted``
serve their pages. Below it sit the domain packages (evaluation, access, workers); above
it only presenters, ui, pages and the CLI. See docs/architecture.md."""
