// Entry point of the server process.
import { serve } from './serve.js'

await serve()
