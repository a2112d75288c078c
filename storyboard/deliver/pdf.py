"""A small PDF writer: pages of JPEG images and Helvetica text, nothing more.

Enough for a printable storyboard with real (searchable, extractable) text. JPEG
bytes are embedded as they are (DCTDecode); text uses the standard Helvetica font
with WinAnsi encoding, so nothing is embedded and characters outside cp1252 show as
'?'. Written by hand because no library in the project's dependency set writes PDF
text, and this subset of the format is small and fixed (PDF 1.4, ISO 32000 §7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

A4_LANDSCAPE = (842.0, 595.0)  # points


@dataclass
class PdfPage:
    width: float = A4_LANDSCAPE[0]
    height: float = A4_LANDSCAPE[1]
    operations: list[str] = field(default_factory=list)
    images: list[tuple[str, int]] = field(default_factory=list)  # (name, image index)

    def text(self, x: float, y: float, size: float, line: str, bold: bool = False) -> None:
        """One line of text whose baseline starts at (x, y), from the bottom-left corner."""
        font = "/F2" if bold else "/F1"
        self.operations.append(f"BT {font} {size:g} Tf {x:.2f} {y:.2f} Td ({_escape(line)}) Tj ET")

    def image(self, index: int, x: float, y: float, width: float, height: float) -> None:
        name = f"Im{len(self.images) + 1}"
        self.images.append((name, index))
        self.operations.append(f"q {width:.2f} 0 0 {height:.2f} {x:.2f} {y:.2f} cm /{name} Do Q")

    def rectangle(self, x: float, y: float, width: float, height: float, grey: float = 0.8) -> None:
        self.operations.append(f"q {grey:g} G 0.5 w {x:.2f} {y:.2f} {width:.2f} {height:.2f} re S Q")


@dataclass
class PdfDocument:
    title: str = ""
    pages: list[PdfPage] = field(default_factory=list)
    jpegs: list[tuple[bytes, int, int]] = field(default_factory=list)  # data, width, height

    def add_jpeg(self, data: bytes, width: int, height: int) -> int:
        self.jpegs.append((data, width, height))
        return len(self.jpegs) - 1

    def new_page(self) -> PdfPage:
        self.pages.append(PdfPage())
        return self.pages[-1]

    def to_bytes(self) -> bytes:
        writer = _Writer()
        catalog, pages_id = writer.reserve(), writer.reserve()
        fonts = [writer.add(f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>"
                            .encode()) for name in ("Helvetica", "Helvetica-Bold")]
        images = [writer.add_stream(f"/Type /XObject /Subtype /Image /Width {w} /Height {h} /ColorSpace "
                                    f"/DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode", data)
                  for data, w, h in self.jpegs]
        kids = []
        for page in self.pages:
            content = writer.add_stream("", "\n".join(page.operations).encode("latin-1"))
            xobjects = " ".join(f"/{name} {images[index]} 0 R" for name, index in page.images)
            kids.append(writer.add(
                f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {page.width:g} {page.height:g}] "
                f"/Resources << /Font << /F1 {fonts[0]} 0 R /F2 {fonts[1]} 0 R >> "
                f"/XObject << {xobjects} >> >> "
                f"/Contents {content} 0 R >>".encode()))
        writer.set(pages_id, f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] "
                             f"/Count {len(kids)} >>".encode())
        writer.set(catalog, f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode())
        info = writer.add(f"<< /Title ({_escape(self.title)}) /Producer (storyboard) >>".encode())
        return writer.finish(catalog, info)


class _Writer:
    """Numbered objects, then the cross-reference table that points at each of them."""

    def __init__(self) -> None:
        self.objects: list[bytes | None] = []

    def reserve(self) -> int:
        self.objects.append(None)
        return len(self.objects)

    def set(self, number: int, body: bytes) -> None:
        self.objects[number - 1] = body

    def add(self, body: bytes) -> int:
        self.objects.append(body)
        return len(self.objects)

    def add_stream(self, dictionary: str, data: bytes) -> int:
        return self.add(f"<< {dictionary} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream")

    def finish(self, root: int, info: int) -> bytes:
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, 1):
            assert body is not None, f"object {number} was reserved but never written"
            offsets.append(len(out))
            out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
        xref = len(out)
        out += f"xref\n0 {len(self.objects) + 1}\n0000000000 65535 f \n".encode()
        out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
        out += (f"trailer\n<< /Size {len(self.objects) + 1} /Root {root} 0 R /Info {info} 0 R >>\n"
                f"startxref\n{xref}\n%%EOF\n").encode()
        return bytes(out)


def _escape(text: str) -> str:
    """A PDF literal string body in WinAnsi (cp1252); other characters become '?'."""
    encoded = text.encode("cp1252", errors="replace").decode("latin-1")
    return encoded.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace("\r", " ").replace(
        "\n", " ")

