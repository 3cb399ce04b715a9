"""plotly.js stored compressed in the page and run from there, under the page's own policy.

Inlined as it comes, plotly.js is 4.8 MB of a report's 4.8 MB. Here it is gzipped (1.5 MB)
and written in an 85-letter ASCII alphabet (5 letters per 4 bytes; base64 would take 4 per
3 and push the page past 2 MB) inside a data block the browser does not run. A small loader
decodes it, expands it with the browser's own ``DecompressionStream`` and runs it as an
inline script whose SHA-256 is in the page's Content-Security-Policy, like every other
script of the page: no ``eval``, no ``blob:`` scripts, nothing fetched. Then it draws the
charts, whose figures wait in JSON data blocks.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from pathlib import Path

from plotly.offline import get_plotlyjs

from search_spaces.atomic_files import write_atomic

# Printable ASCII less what could end a script element or need escaping in HTML or a JS
# string: no '<' means no '</script' can appear in the data.
ALPHABET = "".join(c for c in map(chr, range(33, 127)) if c not in "<&\\\"'`")[:85]


def encode85(data: bytes) -> str:
    """``data`` in ``ALPHABET``, 5 letters per 4 bytes (the last group zero-padded)."""
    padded = data + b"\0" * (-len(data) % 4)
    out = []
    for i in range(0, len(padded), 4):
        value = int.from_bytes(padded[i : i + 4], "big")
        digits = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            digits.append(ALPHABET[digit])
        out.append("".join(reversed(digits)))
    return "".join(out)


@functools.cache
def plotly_js() -> str:
    """plotly.js as the loader will run it (the string its hash is taken of)."""
    return str(get_plotlyjs())


@functools.cache
def compressed_plotly() -> tuple[str, int]:
    """plotly.js gzipped and encoded, and the gzip stream's length in bytes. Made once per
    plotly.js and kept in the user's cache folder: 0.5 s of every sweep's end otherwise."""
    source = plotly_js().encode()
    cached = _cache_dir() / f"plotly-{hashlib.sha256(source).hexdigest()[:16]}.b85"
    try:
        size, _, packed_text = cached.read_text().partition("\n")
        if size.isdigit() and len(packed_text) == (int(size) + 3) // 4 * 5:
            return packed_text, int(size)
    except OSError:
        pass
    packed = gzip.compress(source, compresslevel=9, mtime=0)
    encoded = encode85(packed)
    try:  # a cache that cannot be written costs the 0.5 s again, nothing else
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cached, f"{len(packed)}\n{encoded}")
    except OSError:
        pass
    return encoded, len(packed)


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweep"


LOADER = """(function(){
var A=%(alphabet)s,T=new Int16Array(128);for(var i=0;i<85;i++)T[A.charCodeAt(i)]=i;
function decode(s,n){var L=s.length,out=new Uint8Array(L/5*4),o=0;
for(var i=0;i<L;i+=5){var v=(((T[s.charCodeAt(i)]*85+T[s.charCodeAt(i+1)])*85
+T[s.charCodeAt(i+2)])*85+T[s.charCodeAt(i+3)])*85+T[s.charCodeAt(i+4)];
out[o]=v>>>24;out[o+1]=(v>>>16)&255;out[o+2]=(v>>>8)&255;out[o+3]=v&255;o+=4;}
return out.subarray(0,n);}
function draw(){var t=JSON.parse(document.getElementById('plotly-template').textContent);
document.querySelectorAll('div[data-figure]').forEach(function(d){
var f=JSON.parse(document.getElementById(d.dataset.figure).textContent);
f.layout=f.layout||{};if(!f.layout.template)f.layout.template=t;
Plotly.newPlot(d,f.data,f.layout,{displaylogo:false,responsive:true});});
document.body.dataset.drawnMs=String(Math.round(performance.now()));}
var b=document.getElementById('plotly-bundle');
if(!b){draw();return;}
var bytes=decode(b.textContent.trim(),+b.dataset.bytes);
new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip')))
.text().then(function(code){var s=document.createElement('script');s.textContent=code;
document.head.appendChild(s);draw();}).catch(function(e){
document.getElementById('js-errors').textContent+='plotly: '+e+'\\n';});
})();"""


def loader() -> str:
    import json

    return LOADER % {"alphabet": json.dumps(ALPHABET)}
