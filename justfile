# AccMan recipes: thin wrappers over npm scripts and the accman CLI (`npx accman --help`).
# The CLI recipes print the CLI's own one-line error and exit with its code.
set dotenv-load

export PATH := justfile_directory() + "/node_modules/.bin:" + env_var("PATH")

accman := "node " + quote(justfile_directory() / "dist/cli/main.js")

# List the recipes
default:
    @{{ just_executable() }} --list --justfile {{ quote(justfile()) }}

# Build, then serve on ACCMAN_HOST:ACCMAN_PORT (127.0.0.1:22262 unless configured)
start: build
    exec {{ accman }} serve

# Serve from the TypeScript sources, restarting on every change
dev:
    exec tsx watch src/cli/main.ts serve

# Run the test suite
test:
    npm test

# Type-check and lint
check:
    npm run typecheck && npm run lint

# Benchmark AccMan against a bare Fastify hello world (extra flags pass through, e.g. --out results.json)
bench *flags:
    npm run bench -- {{ flags }}

# Compile the TypeScript into dist/
build:
    npm run build

# Print the balance of CRED (default: ACCMAN_CRED)
[no-exit-message]
tot cred=env_var_or_default("ACCMAN_CRED", ""): _built
    @{{ accman }} tot -- {{ quote(cred) }}

# Add BY to the balance of CRED (negative to debit; a credit creates the account)
[no-exit-message]
mod cred by: _built
    @{{ accman }} mod -- {{ quote(cred) }} {{ quote(by) }}

# Move BY from the account of CRED to the account of TO, atomically (TO must exist)
[no-exit-message]
move cred to by: _built
    @{{ accman }} move -- {{ quote(cred) }} {{ quote(to) }} {{ quote(by) }}

# Freeze CRED: debits and moves out are refused until unfreeze
[no-exit-message]
freeze cred: _built
    @{{ accman }} freeze -- {{ quote(cred) }}

# Lift the freeze of CRED
[no-exit-message]
unfreeze cred: _built
    @{{ accman }} unfreeze -- {{ quote(cred) }}

# Print the history of CRED as a table (default: ACCMAN_CRED); extra flags such as --desc pass through
[no-exit-message]
past cred=env_var_or_default("ACCMAN_CRED", "") *flags: _built
    @{{ accman }} past {{ flags }} -- {{ quote(cred) }}

# Reserve BY on CRED for a while (flags such as --ttl 60 pass through) and print the hold
hold cred by *flags: _built
    @{{ accman }} hold {{ flags }} -- {{ quote(cred) }} {{ quote(by) }}

# Settle HOLD of CRED (all of it, or --by N) as a debit, releasing the rest
settle cred hold *flags: _built
    @{{ accman }} settle {{ flags }} -- {{ quote(cred) }} {{ quote(hold) }}

# Release HOLD of CRED
void cred hold *flags: _built
    @{{ accman }} void {{ flags }} -- {{ quote(cred) }} {{ quote(hold) }}

# Print the active holds of CRED (default: ACCMAN_CRED)
holds cred=env_var_or_default("ACCMAN_CRED", ""): _built
    @{{ accman }} holds -- {{ quote(cred) }}
# Print the details of the account of CRED as JSON (default: ACCMAN_CRED): public id, tot, held, avail, seq, times
[no-exit-message]
acct cred=env_var_or_default("ACCMAN_CRED", ""): _built
    @{{ accman }} acct -- {{ quote(cred) }}

# Point the credential NEW at the account of CRED (it keeps working GRACE more seconds) and print the account as JSON
[no-exit-message]
rotate cred new grace="0": _built
    @{{ accman }} rotate --grace {{ quote(grace) }} -- {{ quote(cred) }} {{ quote(new) }}

# Make a fresh credential, credit it with BY when nonzero, and print it
[no-exit-message]
new by="0": _built
    @{{ accman }} new {{ quote(by) }}

# Check the whole database offline (stop the server first)
[no-exit-message]
verify: _built
    @{{ accman }} verify

# Write every account and its history to FILE as JSON Lines (stop the server first)
[no-exit-message]
export file: _built
    @{{ accman }} export {{ quote(file) }}

# Restore FILE into an empty database and verify it (stop the server first)
[no-exit-message]
import file: _built
    @{{ accman }} import {{ quote(file) }}

[private]
_built:
    @test -f {{ quote(justfile_directory() / "dist/cli/main.js") }} || npm run build --silent

# Run the paid-echo example service against AccMan (ACCMAN_URL, ACCMAN_TOKEN, PORT; see README)
paid-echo: build
    exec node --import tsx examples/paid-echo/main.ts
