import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { isCredential } from '../contract/syntax.js'

/**
 * A fresh credential: 32 bytes from the CSPRNG, base64url with its padding (43 characters and
 * '='). One that would start with '-' is drawn again, so that it never reads as an option on a
 * command line; that costs well under a bit of the 256.
 */
export function newCredential(): string {
  for (;;) {
    const credential = `${randomBytes(32).toString('base64url')}=`
    assert.ok(isCredential(credential), 'a fresh credential must pass the credential syntax')
    if (!credential.startsWith('-')) return credential
  }
}
