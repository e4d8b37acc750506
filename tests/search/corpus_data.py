"""Hand-written part of the relevance corpus: well-known packages (what people search for) with
realistic descriptions, keywords, authors and weekly downloads, and the vocabulary the generated
noise is built from. Numbers are of the right order, not real."""

# name, description, keywords, weekly downloads, author
ANCHORS = [
    ("express", "Fast, unopinionated, minimalist web framework", "express framework web http rest router app api", 30_000_000, "tj"),
    ("koa", "Koa web app framework", "web app http application framework middleware rack", 1_500_000, "tj"),
    ("fastify", "Fast and low overhead web framework, for Node.js", "web framework json schema performance", 2_000_000, "mcollina"),
    ("react", "React is a JavaScript library for building user interfaces.", "react ui components", 25_000_000, "facebook"),
    ("react-dom", "React package for working with the DOM.", "react dom render", 22_000_000, "facebook"),
    ("react-router", "Declarative routing for React", "react router route routing history link", 9_000_000, "mjackson"),
    ("react-router-dom", "Declarative routing for React web applications", "react router dom routing", 10_000_000, "mjackson"),
    ("vue", "The progressive JavaScript framework for building modern web UI.", "vue framework ui", 5_000_000, "yyx990803"),
    ("lodash", "Lodash modular utilities.", "modules stdlib util", 50_000_000, "jdalton"),
    ("underscore", "JavaScript's functional programming helper library.", "util functional server client browser", 12_000_000, "jashkenas"),
    ("moment", "Parse, validate, manipulate, and display dates", "moment date time parse format validate i18n l10n", 20_000_000, "ichernev"),
    ("dayjs", "2KB immutable date time library alternative to Moment.js with the same modern API", "dayjs date time immutable moment", 18_000_000, "iamkun"),
    ("date-fns", "Modern JavaScript date utility library", "date time utilities format parse", 19_000_000, "kossnocorp"),
    ("axios", "Promise based HTTP client for the browser and node.js", "xhr http ajax promise node client", 45_000_000, "mzabriskie"),
    ("node-fetch", "A light-weight module that brings Fetch API to node.js", "fetch http promise request", 40_000_000, "bitinn"),
    ("got", "Human-friendly and powerful HTTP request library for Node.js", "http https http2 get got url uri request client fetch", 20_000_000, "sindresorhus"),
    ("chalk", "Terminal string styling done right", "color colour colors terminal console cli string ansi style styles", 250_000_000, "sindresorhus"),
    ("commander", "the complete solution for node.js command-line programs", "commander command option parser cli argument args argv", 150_000_000, "tj"),
    ("yargs", "yargs the modern, pirate-themed, successor to optimist.", "argument args option parser parsing cli command", 80_000_000, "bcoe"),
    ("minimist", "parse argument options", "argv getopt parser optimist", 60_000_000, "substack"),
    ("debug", "Lightweight debugging utility for Node.js and the browser", "debug log debugger", 200_000_000, "tj"),
    ("uuid", "RFC9562 UUIDs", "uuid guid rfc4122 rfc9562 unique id", 100_000_000, "broofa"),
    ("nanoid", "A tiny (118 bytes), secure URL-friendly unique string ID generator", "uuid random id url", 50_000_000, "ai"),
    ("jest", "Delightful JavaScript Testing.", "testing test runner framework jest", 25_000_000, "cpojer"),
    ("mocha", "simple, flexible, fun test framework", "mocha test bdd tdd tap testing", 8_000_000, "tj"),
    ("chai", "BDD/TDD assertion library for node.js and the browser. Test framework agnostic.", "test assertion assert testing chai", 10_000_000, "chaijs"),
    ("eslint", "An AST-based pattern checker for JavaScript.", "ast lint javascript ecmascript espree", 40_000_000, "nzakas"),
    ("prettier", "Prettier is an opinionated code formatter", "format formatter code style", 35_000_000, "vjeux"),
    ("typescript", "TypeScript is a language for application scale JavaScript development", "typescript microsoft compiler language javascript", 55_000_000, "microsoft"),
    ("webpack", "Packs ECMAScript/CommonJs/AMD modules for the browser.", "webpack bundler web module bundle", 30_000_000, "sokra"),
    ("rollup", "Next-generation ES module bundler", "modules bundler bundling es6 optimizer", 25_000_000, "rich-harris"),
    ("esbuild", "An extremely fast JavaScript and CSS bundler and minifier.", "bundler minifier compiler", 40_000_000, "evanw"),
    ("vite", "Native-ESM powered web dev build tool", "frontend framework hmr dev-server build-tool vite", 20_000_000, "yyx990803"),
    ("@babel/core", "Babel compiler core.", "6to5 babel classes const es6 harmony let modules transpile transpiler", 45_000_000, "hzoo"),
    ("@babel/preset-env", "A Babel preset for each environment.", "babel preset env", 30_000_000, "hzoo"),
    ("@types/node", "TypeScript definitions for node", "types typescript node definitions", 90_000_000, "types"),
    ("@types/react", "TypeScript definitions for react", "types typescript react definitions", 25_000_000, "types"),
    ("dotenv", "Loads environment variables from .env file", "dotenv env .env environment variables config settings", 40_000_000, "motdotla"),
    ("jsonwebtoken", "JSON Web Token implementation (symmetric and asymmetric)", "jwt json web token auth", 15_000_000, "auth0"),
    ("bcrypt", "A bcrypt library for NodeJS.", "bcrypt password auth authentication encryption crypt crypto", 2_000_000, "ncb000gt"),
    ("mongoose", "Mongoose MongoDB ODM", "mongodb document model schema database odm data datastore query nosql orm db", 3_000_000, "aheckmann"),
    ("mongodb", "The official MongoDB driver for Node.js", "mongodb driver official", 6_000_000, "mongodb"),
    ("sequelize", "Sequelize is a promise-based Node.js ORM tool for Postgres, MySQL, MariaDB, SQLite, Microsoft SQL Server", "mysql mariadb sqlite postgresql postgres pg mssql sql orm nodejs object relational database mapper", 2_000_000, "sdepold"),
    ("pg", "PostgreSQL client - pure javascript & libpq with the same API", "database libpq pg postgre postgres postgresql rdbms", 8_000_000, "brianc"),
    ("redis", "A modern, high performance Redis client", "database redis pubsub", 4_000_000, "leibale"),
    ("ioredis", "A robust, performance-focused and full-featured Redis client for Node.js.", "redis cluster sentinel pipelining", 6_000_000, "luin"),
    ("socket.io", "node.js realtime framework server", "realtime framework websocket tcp events socket io", 5_000_000, "rauchg"),
    ("ws", "Simple to use, blazing fast and thoroughly tested websocket client and server for Node.js", "hixie hybi rfc-6455 websocket websockets", 80_000_000, "einaros"),
    ("cors", "Node.js CORS middleware", "cors express connect middleware", 15_000_000, "troygoode"),
    ("body-parser", "Node.js body parsing middleware", "body parser middleware json urlencoded", 30_000_000, "dougwilson"),
    ("helmet", "help secure Express/Connect apps with various HTTP headers", "express security headers middleware", 3_000_000, "evanhahn"),
    ("winston", "A logger for just about everything.", "winston logger logging logs sysadmin bunyan pino loglevel tools json stream", 12_000_000, "indexzero"),
    ("pino", "super fast, all natural json logger", "fast logger stream json", 10_000_000, "mcollina"),
    ("bluebird", "Full featured Promises/A+ implementation with exceptionally good performance", "promise performance promises promises-a promises-aplus async await deferred deferreds future flow control dsl fluent interface", 25_000_000, "petkaantonov"),
    ("rxjs", "Reactive Extensions for modern JavaScript", "Rx RxJS ReactiveX ReactiveExtensions Streams Observables Observable Stream ES6", 45_000_000, "benlesh"),
    ("redux", "Predictable state container for JavaScript apps", "redux reducer state predictable functional immutable hot live replay flux elm", 10_000_000, "gaearon"),
    ("zod", "TypeScript-first schema declaration and validation library with static type inference", "typescript schema validation type inference", 30_000_000, "colinhacks"),
    ("joi", "Object schema validation", "schema validation", 10_000_000, "hapi"),
    ("yup", "Dead simple Object schema validation", "validation schema object", 7_000_000, "jquense"),
    ("sharp", "High performance Node.js image processing, the fastest module to resize JPEG, PNG, WebP images", "jpeg png webp avif tiff gif svg resize thumbnail image crop", 9_000_000, "lovell"),
    ("puppeteer", "A high-level API to control headless Chrome over the DevTools Protocol", "puppeteer chrome headless automation", 4_000_000, "aslushnikov"),
    ("cheerio", "The fast, flexible & elegant library for parsing and manipulating HTML and XML.", "htmlparser jquery selector scraper parser dom xml html", 8_000_000, "fb55"),
    ("marked", "A markdown parser built for speed", "markdown markup html", 10_000_000, "chjj"),
    ("markdown-it", "Markdown-it - modern pluggable markdown parser.", "markdown parser commonmark markdown-it markdown-it-plugin", 9_000_000, "vitaly"),
    ("semver", "The semantic version parser used by npm.", "semver version semantic", 250_000_000, "isaacs"),
    ("glob", "the most correct and second fastest glob implementation in JavaScript", "glob pattern match files", 150_000_000, "isaacs"),
    ("rimraf", "A deep deletion module for node (like `rm -rf`)", "rm rimraf delete recursive", 80_000_000, "isaacs"),
    ("fs-extra", "fs-extra contains methods that aren't included in the vanilla Node.js fs package. Such as recursive mkdir, copy, and remove.", "fs file copy directory extra mkdirp mkdir mkdirs recursive json read write", 90_000_000, "jprichardson"),
    ("chokidar", "Minimal and efficient cross-platform file watching library", "fs watch watchFile watcher watching file fsevents", 80_000_000, "paulmillr"),
    ("nodemon", "Simple monitor script for use during development of a Node.js app.", "cli monitor monitoring development restart autoload reload terminal", 7_000_000, "remy"),
    ("classnames", "A simple utility for conditionally joining classNames together", "react css classes classname classnames util utility", 15_000_000, "jedwatson"),
    ("styled-components", "CSS for the <Component> Age. Style components your way with speed, strong typing, and flexibility.", "react css css-in-js styled-components", 5_000_000, "mxstbr"),
    ("tailwindcss", "A utility-first CSS framework for rapidly building custom user interfaces.", "tailwindcss tailwind css utility-first framework", 12_000_000, "adamwathan"),
    ("graphql", "A Query Language and Runtime which can target any service.", "graphql graphql-js", 15_000_000, "leebyron"),
    ("@nestjs/core", "Nest - modern, fast, powerful node.js web framework (@core)", "nestjs framework nodejs typescript", 4_000_000, "kamilmysliwiec"),
    ("@angular/core", "Angular - the core framework", "angular framework core", 4_000_000, "angular"),
    ("next", "The React Framework", "react framework ssr", 8_000_000, "vercel"),
    ("svelte", "Cybernetically enhanced web apps", "svelte UI framework templates", 2_000_000, "rich-harris"),
    ("three", "JavaScript 3D library", "three three.js javascript 3d virtual-reality augmented-reality webgl webgl2 webaudio webgpu webxr canvas svg html5", 2_000_000, "mrdoob"),
    ("d3", "Data-Driven Documents", "dom visualization svg animation canvas", 3_000_000, "mbostock"),
    ("chart.js", "Simple HTML5 charts using the canvas element.", "canvas charts data graphs html5 responsive", 3_000_000, "etimberg"),
    ("leaflet", "JavaScript library for mobile-friendly interactive maps", "gis map maps", 1_000_000, "mourner"),
    ("immer", "Create your next immutable state by mutating the current one", "immutable mutable copy-on-write", 12_000_000, "mweststrate"),
    ("async", "Higher-order functions and common patterns for asynchronous code", "async callback module utility", 50_000_000, "caolan"),
]
# Old, finished, deprecated and unstable anchors for the flag qualifiers.
DEPRECATED = {"request": ("Simplified HTTP request client.", "http simple util utility", 15_000_000, "mikeal",
                          "request has been deprecated, see https://github.com/request/request/issues/3142")}
UNSTABLE = {"temporal-polyfill": ("A lightweight polyfill for Temporal, successor to the JavaScript Date object",
                                  "temporal date time polyfill", 400_000, "arshaw")}

ADJECTIVES = ("fast tiny simple modern lightweight smart super micro mini easy awesome better cool pretty "
              "little lazy quick clean safe strict fancy magic neat rapid secure solid swift universal").split()
NOUNS = ("cache queue parser client server router logger config store stream buffer worker task job event "
         "emitter proxy socket session cookie token schema validator formatter loader bundler compiler "
         "renderer component widget button modal table grid chart map icon theme color image file path url "
         "query graph tree list set hash crypto random date time timer clock scheduler retry limiter "
         "pool driver adapter plugin middleware hook state form input select picker slider toast "
         "tooltip dialog menu layout style css html markdown json yaml csv xml pdf zip tar").split()
TOPICS = ("react vue angular svelte express koa node browser webpack babel eslint typescript graphql redux "
          "mongodb postgres mysql redis aws docker kubernetes electron cli terminal").split()
VERBS = ("parse format validate render compile bundle transform convert generate resolve watch serve "
         "fetch cache store load sync stream encode decode compress minify lint test mock").split()
SCOPES = ("acme corp myorg labs dev tools ui internal company team utils platform cloud data core").split()
PEOPLE = [f"dev{i:03d}" for i in range(120)]
SENTENCES = (
    "Install it with npm and import it in your project.",
    "It works in Node.js and in the browser.",
    "Zero dependencies and fully typed.",
    "See the examples folder for more usage patterns.",
    "Contributions are welcome; please open an issue first.",
    "The API is stable and follows semantic versioning.",
    "Benchmarks show it is faster than the alternatives.",
    "Licensed under the MIT license.",
)
