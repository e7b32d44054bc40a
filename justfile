set dotenv-load
export PATH := justfile_directory() + "/node_modules/.bin:" + env_var("PATH")

# List the recipes
default:
    @{{just_executable()}} --list --justfile {{justfile()}}

# Build, then serve on ACCMAN_HOST:ACCMAN_PORT (127.0.0.1:22262 unless configured)
start:
    npm run build
    exec node dist/server.js

# Serve from the TypeScript sources, restarting on every change
dev:
    exec tsx watch src/server.ts

# Run the test suite
test:
    npm test

# Type-check and lint
check:
    npm run typecheck && npm run lint

# Print the balance of the account of CRED (curl for now; the AccMan CLI once it exists)
tot $cred:
    @curl -sS -w '\n' -G --data-urlencode "cred=$cred" "${ACCMAN_URL:-http://127.0.0.1:22262}/tot"

# Add BY to the balance of CRED, with an optional NOTE (curl for now; the AccMan CLI once it exists)
mod $cred $by $note="":
    @curl -sS -w '\n' -X PATCH -G --data-urlencode "cred=$cred" --data-urlencode "by=$by" ${note:+--data-urlencode "note=$note"} "${ACCMAN_URL:-http://127.0.0.1:22262}/mod"
