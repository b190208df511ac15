"""Tables that render as HTML in a notebook and as aligned text elsewhere.

One small class shared by the notebook helpers (:mod:`mmkit.notebook`) and
the labs (:mod:`mmkit.labs`): a value a cell shows by naming it last.

>>> t = Table(["page", "refcount"], [["parent", 2], ["child", 2]], caption="after fork")
>>> t.column("refcount")
[2, 2]
>>> print(t)
after fork
page    refcount
parent         2
child          2
"""

from html import escape

__all__ = ["Table", "Tables", "cell_text"]


def cell_text(v):
    """How a cell prints: ``?`` for unknown (None), yes/no, bytes as a literal,
    floats with two decimals."""
    if v is None:
        return "?"
    if v is True:
        return "yes"
    if v is False:
        return "no"
    if isinstance(v, (bytes, bytearray)):
        return repr(bytes(v))
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _numeric(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Table(list):
    """Rows (lists of cells) under a header, with an optional caption.

    The first column is left-aligned, numeric columns right-aligned.
    ``t.rows`` is the table itself (a list of rows); ``footer`` is a line
    under it (the notation key of the symbols it uses); ``aliases`` maps
    other names of columns (API field names) to their headers.
    """

    def __init__(self, header, rows, caption="", css_class="mm-table", footer=""):
        super().__init__([list(r) for r in rows])
        self.header = list(header)
        self.caption = caption
        self.css_class = css_class
        self.footer = footer
        self.aliases = {}

    @property
    def rows(self):
        return self

    def column(self, name):
        """The cells of column ``name`` (a header, or a name in :attr:`aliases`)."""
        j = self.header.index(self.aliases.get(name, name))
        return [r[j] for r in self]

    def _num(self):
        return [j > 0 and bool(self) and all(_numeric(r[j]) for r in self) for j in range(len(self.header))]

    def __str__(self):
        cells = [self.header] + [[cell_text(c) for c in r] for r in self]
        w = [max(len(str(r[j])) for r in cells) for j in range(len(self.header))]
        num = self._num()
        lines = [self.caption] if self.caption else []
        lines += ["  ".join(str(c).rjust(x) if num[j] else str(c).ljust(x) for j, (c, x) in enumerate(zip(r, w)))
                  .rstrip() for r in cells]
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        num = self._num()

        def td(j, c):
            return f"<td style='text-align:{'right' if num[j] else 'left'}'>{escape(cell_text(c))}</td>"
        head = "".join(f"<th>{escape(str(h))}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(td(j, c) for j, c in enumerate(r)) + "</tr>" for r in self)
        cap = (f"<caption style='caption-side:top;text-align:left'><b>{escape(self.caption)}</b></caption>"
               if self.caption else "")
        foot = (f"<div class='mm-key' style='font-size:85%;color:#444'>{escape(self.footer)}</div>"
                if self.footer else "")
        return (f'<table class="{self.css_class}" style="border-collapse:collapse;font-size:95%">{cap}'
                f"<tr>{head}</tr>{body}</table>{foot}"
                f"<style>.{self.css_class} td,.{self.css_class} th{{border:1px solid #ccd;padding:2px 8px}}</style>")


class Tables(list):
    """Several tables (or anything with ``_repr_html_``) shown one after the other."""

    def __str__(self):
        return "\n\n".join(map(str, self))

    __repr__ = __str__

    def _repr_html_(self):
        return "".join(t._repr_html_() for t in self)
