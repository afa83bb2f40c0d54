"""Certificates issued from the replica while the datacenter is unreachable (住民票の写し etc.).

The flow, one module per step::

    request  = CertRequest(...)                              model.py    what the clerk asked
    document = issue.prepare(records, request, config, at)   issue.py    rules.py (who gets what),
                                                                         pages.py (sheets, items),
                                                                         glyphs.py (fonts can print it),
                                                                         serial.py (発行番号, durable)
    pdf      = render.Renderer(config).pdf(document)         render.py   Jinja2 → WeasyPrint

Settings are `config.CertConfig`; errors are in `errors` (RuleViolation, MissingGlyph,
LayoutOverflow under CertError). Importing this package loads neither WeasyPrint nor Jinja2.
"""
