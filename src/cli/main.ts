#!/usr/bin/env node
// The accman bin (dist/cli/main.js): runs the command line of this process. Everything else is
// in program.ts, which can be imported.
import { processIo } from './context.js'
import { run } from './program.js'

process.exitCode = await run(process.argv, processIo)
