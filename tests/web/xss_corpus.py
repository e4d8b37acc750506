"""The XSS corpus the website tests publish: README, description, keywords, author and file names.

Every payload that could run calls ``alert``; the browser tests fail on any dialog, page error or
console error, and also check the DOM for what a sanitiser must never let through.
"""

README_PAYLOADS = [
    "<script>alert('readme-script')</script>",
    "<img src=x onerror=alert('img-onerror')>",
    "<svg onload=alert('svg-onload')></svg>",
    "<svg><script>alert('svg-script')</script></svg>",
    '<iframe srcdoc="<script>parent.alert(\'srcdoc\')</script>"></iframe>',
    "<iframe src=\"javascript:alert('iframe-js')\"></iframe>",
    "<object data=\"javascript:alert('object')\"></object>",
    "<embed src=\"javascript:alert('embed')\">",
    "<a href=\"jav&#x09;ascript:alert('tab-js')\">tab</a>",
    "<a href=\"javascript:alert('plain-js')\">plain</a>",
    "<a href=\"JaVaScRiPt:alert('case-js')\">case</a>",
    "<a href=\"data:text/html,<script>alert('data-html')</script>\">data</a>",
    "<a href=\"vbscript:msgbox('vb')\">vb</a>",
    "<base href=\"javascript:alert('base')//\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert('meta')\">",
    "<form action=\"javascript:alert('form')\"><button>go</button></form>",
    "<p style=\"width: expression(alert('expression'))\">expr</p>",
    "<div style=\"background:url(javascript:alert('css-url'))\">css</div>",
    "<details open ontoggle=alert('ontoggle')>x</details>",
    "<body onload=alert('body')>",
    "<input autofocus onfocus=alert('autofocus')>",
    "<video><source onerror=alert('source')></video>",
    "<img src=\"x\" srcset=\"javascript:alert('srcset')\">",
    "<a href=\"#\" onclick=\"alert('onclick')\">click</a>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert('noscript')>\"></noscript>",
    "<style>@import 'javascript:alert(\"style\")';</style>",
    "<template><img src=x onerror=alert('template')></template>",
    "[md-link](javascript:alert('md-link'))",
    "![md-img](javascript:alert('md-img'))",
    "<javascript:alert('autolink')>",
    "[ref-link][evil]\n\n[evil]: javascript:alert('ref-link')",
    "```html\n<script>alert('fenced')</script>\n```",
    "`<img src=x onerror=alert('inline-code')>`",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert('mxss')>",  # swallows what follows: keep last
]

DESCRIPTION = "<script>alert('description')</script><img src=x onerror=alert('description-img')>"
KEYWORDS = ["<svg onload=alert('keyword')>", "\"><img src=x onerror=alert('keyword-attr')>", "javascript:alert(1)"]
AUTHOR = "<img src=x onerror=alert('author')> <evil@example.test>"
FILE_NAMES = [
    "<img src=x onerror=alert('file')>.js",
    "\"><svg onload=alert('file-attr')>.js",
    "lib/<script>alert('dir')<!-- .js",
    "page.html",
]
FILE_CONTENT = "<script>alert('file-content')</script>\n<img src=x onerror=alert('file-content-img')>\n"


def readme() -> str:
    return "# XSS corpus\n\nSafe text stays.\n\n" + "\n\n".join(README_PAYLOADS) + "\n"


def count() -> int:
    return len(README_PAYLOADS) + 1 + len(KEYWORDS) + 1 + len(FILE_NAMES)
