// The console: sign in when the server has tokens, look an account up by its credential, show
// its balance, chart and history, and act on it within what the token allows.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { accountActions, allows, type ActionSpec } from './actions.js'
import { Api, Refusal, type Range, type Scope } from './api.js'
import { Chart } from './chart.js'
import { GroupedAmount } from './amount.js'
import { ConfirmForm } from './confirm-form.js'
import { grouped, newCredential, type Balance } from './format.js'
import { History, RangeFilter } from './history.js'
import { amountMax } from './limits.js'

/** sessionStorage, never localStorage or a cookie: the token goes when the tab closes. */
const tokenStorageKey = 'accman.console.token'

type Auth =
  | { state: 'checking' }
  | { state: 'unreachable'; error: string }
  | { state: 'signin'; error?: string }
  | { state: 'ready'; scope: Scope; api: Api; signedIn: boolean }

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' })

  const check = useCallback(async (token: string | undefined) => {
    const api = new Api(token)
    try {
      const scope = await api.whoami()
      if (token !== undefined) sessionStorage.setItem(tokenStorageKey, token)
      setAuth({ state: 'ready', scope, api, signedIn: token !== undefined && scope !== 'open' })
    } catch (caught) {
      if (caught instanceof Refusal && caught.status === 401) {
        sessionStorage.removeItem(tokenStorageKey)
        setAuth(token === undefined ? { state: 'signin' } : { state: 'signin', error: 'The server refused this token.' })
      } else {
        setAuth({ state: 'unreachable', error: caught instanceof Error ? caught.message : String(caught) })
      }
    }
  }, [])

  useEffect(() => {
    void check(sessionStorage.getItem(tokenStorageKey) ?? undefined)
  }, [check])

  const signOut = useCallback((error?: string) => {
    sessionStorage.removeItem(tokenStorageKey)
    setAuth(error === undefined ? { state: 'signin' } : { state: 'signin', error })
  }, [])

  switch (auth.state) {
    case 'checking':
      return <p class="loading">Connecting…</p>
    case 'unreachable':
      return (
        <main class="center">
          <h1>AccMan console</h1>
          <p role="alert" class="error">
            {auth.error}
          </p>
          <button type="button" onClick={() => void check(sessionStorage.getItem(tokenStorageKey) ?? undefined)}>
            Try again
          </button>
        </main>
      )
    case 'signin':
      return <SignIn error={auth.error} onSubmit={(token) => check(token)} />
    case 'ready':
      return (
        <Console
          api={auth.api}
          scope={auth.scope}
          signedIn={auth.signedIn}
          onSignOut={() => signOut()}
          onUnauthorized={() => signOut('The server no longer accepts this token; sign in again.')}
        />
      )
  }
}

function SignIn({ error, onSubmit }: { error: string | undefined; onSubmit: (token: string) => Promise<void> }) {
  const [token, setToken] = useState('')
  const [pending, setPending] = useState(false)
  const tokenInput = useRef<HTMLInputElement>(null)
  useEffect(() => tokenInput.current?.focus(), [])
  return (
    <main class="center">
      <form
        class="card signin"
        aria-labelledby="signin-title"
        onSubmit={(event) => {
          event.preventDefault()
          if (token.trim() === '' || pending) return
          setPending(true)
          void onSubmit(token.trim()).finally(() => setPending(false))
        }}
      >
        <h1 id="signin-title">AccMan console</h1>
        <p>This server needs a token. A read token shows accounts; a write token may also credit and debit them.</p>
        <div class="field">
          <label for="token">Token</label>
          <input id="token" ref={tokenInput} type="password" autoComplete="off" spellcheck={false} value={token} onInput={(event) => setToken(event.currentTarget.value)} />
        </div>
        <button type="submit" class="primary" disabled={pending}>
          Sign in
        </button>
        {error !== undefined && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  )
}

const scopeText: Record<Scope, string> = {
  write: 'Write access',
  read: 'Read only',
  open: 'Open (no tokens configured)',
}

interface ConsoleProps {
  api: Api
  scope: Scope
  signedIn: boolean
  onSignOut: () => void
  onUnauthorized: () => void
}

type Open = { kind: 'action'; spec: ActionSpec } | { kind: 'new' } | undefined

function Console({ api, scope, signedIn, onSignOut, onUnauthorized }: ConsoleProps) {
  const [credText, setCredText] = useState('')
  /** The credential of the account shown: in memory only, until Forget or sign-out. */
  const [cred, setCred] = useState<string | undefined>()
  const [balance, setBalance] = useState<Balance | undefined>()
  const [lookupError, setLookupError] = useState<string | undefined>()
  const [open, setOpen] = useState<Open>()
  const [status, setStatus] = useState('')
  const [newSecret, setNewSecret] = useState<string | undefined>()
  const [range, setRange] = useState<Range>({})
  /** Bumped whenever what the history and the chart show may have changed. */
  const [generation, setGeneration] = useState(0)
  const credInput = useRef<HTMLInputElement>(null)
  const canWrite = allows(scope, 'write')
  useEffect(() => credInput.current?.focus(), [])

  const refused = (caught: unknown): string => {
    if (caught instanceof Refusal && caught.status === 401) onUnauthorized()
    return caught instanceof Error ? caught.message : String(caught)
  }

  async function lookUp(event: Event) {
    event.preventDefault()
    const typed = credText.trim()
    setOpen(undefined)
    setNewSecret(undefined)
    setStatus('')
    if (typed === '') {
      setLookupError('Enter the credential of an account.')
      credInput.current?.focus()
      return
    }
    try {
      const found = await api.tot(typed)
      setCred(typed)
      setBalance(found)
      setLookupError(undefined)
      setGeneration((value) => value + 1)
    } catch (caught) {
      setCred(undefined)
      setBalance(undefined)
      setLookupError(refused(caught))
    }
  }

  function forget() {
    setCredText('')
    setCred(undefined)
    setBalance(undefined)
    setLookupError(undefined)
    setNewSecret(undefined)
    setOpen(undefined)
    setStatus('The credential was forgotten.')
    credInput.current?.focus()
  }

  function applied(after: Balance, message: string) {
    setBalance(after)
    setOpen(undefined)
    setStatus(message)
    setGeneration((value) => value + 1)
  }

  return (
    <>
      <header class="bar">
        <h1>AccMan console</h1>
        <span class="scope">{scopeText[scope]}</span>
        {signedIn && (
          <button type="button" class="quiet" onClick={onSignOut}>
            Sign out
          </button>
        )}
      </header>
      <main class="console">
        <section class="card lookup">
          <h2>Account</h2>
          <form class="row" onSubmit={(event) => void lookUp(event)}>
            <div class="field grow">
              <label for="cred">Credential</label>
              <input
                id="cred"
                ref={credInput}
                type="password"
                autoComplete="off"
                spellcheck={false}
                value={credText}
                onInput={(event) => setCredText(event.currentTarget.value)}
              />
            </div>
            <div class="buttons">
              <button type="submit" class="primary">
                Look up
              </button>
              <button type="button" onClick={forget}>
                Forget
              </button>
              {canWrite && (
                <button
                  type="button"
                  onClick={() => {
                    setNewSecret(undefined)
                    setOpen({ kind: 'new' })
                  }}
                >
                  New account
                </button>
              )}
            </div>
          </form>
          {lookupError !== undefined && (
            <p role="alert" class="error">
              {lookupError}
            </p>
          )}
          {open?.kind === 'new' && (
            <NewAccount
              api={api}
              onCancel={() => setOpen(undefined)}
              onUnauthorized={onUnauthorized}
              onCreated={(created, after) => {
                setCredText(created)
                setCred(created)
                setNewSecret(created)
                setLookupError(undefined)
                applied(after, `Account created; the balance is ${grouped(after.tot)}.`)
              }}
            />
          )}
          {newSecret !== undefined && <SecretNotice secret={newSecret} onDone={() => setNewSecret(undefined)} />}
        </section>

        <p role="status" class="status">
          {status}
        </p>

        {cred !== undefined && balance !== undefined && (
          <div class="account">
            <section class="card balance" aria-label="Balance">
              <h2>Balance</h2>
              <p class={balance.tot >= 10n ** 15n ? 'tot long' : 'tot'}>
                <GroupedAmount value={balance.tot} />
              </p>
              <dl class="figures">
                <div>
                  <dt>Entries (seq)</dt>
                  <dd>{grouped(BigInt(balance.seq))}</dd>
                </div>
              </dl>
              {canWrite && (
                <div class="buttons actions">
                  {accountActions
                    .filter((spec) => allows(scope, spec.scope))
                    .map((spec) => (
                      <button
                        key={spec.id}
                        type="button"
                        aria-expanded={open?.kind === 'action' && open.spec.id === spec.id}
                        onClick={() => {
                          setNewSecret(undefined)
                          setOpen({ kind: 'action', spec })
                        }}
                      >
                        {spec.label}
                      </button>
                    ))}
                </div>
              )}
              {open?.kind === 'action' && (
                <ConfirmForm
                  key={open.spec.id}
                  title={open.spec.label}
                  preview={(amount) => actionPreview(open.spec, balance.tot, amount)}
                  onCancel={() => setOpen(undefined)}
                  onUnauthorized={onUnauthorized}
                  onConfirm={async (amount, note, key) => {
                    const after = await open.spec.send(api, cred, amount, note, key)
                    applied(after, open.spec.done(grouped(amount), grouped(after.tot)))
                  }}
                />
              )}
            </section>

            <figure class="card chart" aria-label="Balance over time">
              <Chart api={api} cred={cred} range={range} generation={generation} onError={refused} />
            </figure>

            <section class="card history">
              <RangeFilter
                api={api}
                cred={cred}
                range={range}
                onError={refused}
                onStatus={setStatus}
                onChange={(next) => {
                  setRange(next)
                  setGeneration((value) => value + 1)
                }}
              />
              <History key={generation} api={api} cred={cred} range={range} onError={refused} />
            </section>
          </div>
        )}
      </main>
    </>
  )
}

function actionPreview(spec: ActionSpec, tot: bigint, amount: bigint | undefined): { text: string; warning?: boolean } {
  if (amount === undefined) return { text: `The balance is ${grouped(tot)}. Enter an amount to see the effect.` }
  const after = spec.effect(tot, amount)
  const change = `${spec.label} ${grouped(amount)}: the balance goes from ${grouped(tot)} to ${grouped(after)}`
  if (after < 0n) return { text: `${change}, below zero, so the server will refuse it.`, warning: true }
  if (after > amountMax) return { text: `${change}, above the largest balance, so the server will refuse it.`, warning: true }
  return { text: `${change}.` }
}

interface NewAccountProps {
  api: Api
  onCreated: (cred: string, balance: Balance) => void
  onCancel: () => void
  onUnauthorized: () => void
}

/** Makes the credential here, in the browser, once per confirmation (with its key), and credits it. */
function NewAccount({ api, onCreated, onCancel, onUnauthorized }: NewAccountProps) {
  const made = useRef<{ key: string; cred: string } | undefined>(undefined)
  return (
    <ConfirmForm
      title="New account"
      preview={(amount) => ({
        text:
          amount === undefined
            ? 'A new credential is made in this browser; enter the first credit.'
            : `A new credential is made in this browser and credited ${grouped(amount)}: the balance starts at ${grouped(amount)}.`,
      })}
      onCancel={onCancel}
      onUnauthorized={onUnauthorized}
      onConfirm={async (amount, note, key) => {
        if (made.current?.key !== key) made.current = { key, cred: newCredential() }
        const { cred } = made.current
        onCreated(cred, await api.mod(cred, amount, note, key))
      }}
    />
  )
}

/** The new credential, shown once: the server never shows it, and the console will not again. */
function SecretNotice({ secret, onDone }: { secret: string; onDone: () => void }) {
  const shown = useRef<HTMLElement>(null)
  const [copied, setCopied] = useState('')

  async function copy() {
    try {
      await navigator.clipboard.writeText(secret)
      setCopied('Copied.')
    } catch {
      // No clipboard API (an insecure origin): select the text, so that copying by hand is one step.
      const selection = getSelection()
      if (shown.current !== null && selection !== null) selection.selectAllChildren(shown.current)
      setCopied(document.execCommand('copy') ? 'Copied.' : 'Selected: copy it with the keyboard.')
    }
  }

  return (
    <section class="secret" aria-label="New account">
      <h3>New account</h3>
      <p>This is the new account's credential. It is shown only this once: copy it now and keep it secret.</p>
      <div class="row">
        <code ref={shown} class="grow mono secret-value">
          {secret}
        </code>
        <div class="buttons">
          <button type="button" class="primary" onClick={() => void copy()}>
            Copy
          </button>
          <button type="button" onClick={onDone}>
            Done
          </button>
        </div>
      </div>
      <p class="status" aria-live="polite">
        {copied}
      </p>
    </section>
  )
}
