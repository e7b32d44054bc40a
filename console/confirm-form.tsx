// One confirmation form: an amount, an optional note, and a Confirm button next to the effect
// it will have. Every confirmation carries its own Idempotency-Key, made when what it would send
// changes: a double click or a retry of the same confirmation is applied once.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks'
import { Refusal } from './api.js'
import { parseAmount } from './format.js'
import { noteLengthMax } from './limits.js'

export interface ConfirmFormProps {
  /** The form's heading, e.g. "Credit". */
  title: string
  /** What confirming would do, given the amount typed so far (undefined while it is invalid). */
  preview: (amount: bigint | undefined) => { text: string; warning?: boolean }
  /** Sends the request; throws a Refusal with the server's message when it is refused. */
  onConfirm: (amount: bigint, note: string | undefined, idempotencyKey: string) => Promise<void>
  onCancel: () => void
  onUnauthorized: () => void
}

export function ConfirmForm({ title, preview, onConfirm, onCancel, onUnauthorized }: ConfirmFormProps) {
  const [amountText, setAmountText] = useState('')
  const [note, setNote] = useState('')
  const [pending, setPending] = useState(false)
  const [error, setError] = useState<string | undefined>()
  const parsed = parseAmount(amountText)
  const idempotencyKey = useMemo(() => crypto.randomUUID(), [title, amountText, note])
  const effect = preview(parsed.amount)
  const id = title.toLowerCase().replaceAll(/[^a-z]+/g, '-')
  const amountInput = useRef<HTMLInputElement>(null)
  // The autofocus attribute only works once per page load; a form opened later is focused here.
  useEffect(() => amountInput.current?.focus(), [])

  async function confirm(event: Event) {
    event.preventDefault()
    if (pending) return
    if (parsed.error !== undefined) {
      setError(parsed.error)
      amountInput.current?.focus()
      return
    }
    setPending(true)
    setError(undefined)
    try {
      await onConfirm(parsed.amount, note.trim() === '' ? undefined : note, idempotencyKey)
    } catch (caught) {
      if (caught instanceof Refusal && caught.status === 401) return onUnauthorized()
      setError(caught instanceof Error ? caught.message : String(caught))
      setPending(false)
    }
  }

  return (
    <form class="confirm" onSubmit={(event) => void confirm(event)} aria-labelledby={`${id}-title`} noValidate>
      <h3 id={`${id}-title`}>{title}</h3>
      <div class="fields">
        <div class="field">
          <label for={`${id}-amount`}>Amount</label>
          <input
            id={`${id}-amount`}
            ref={amountInput}
            type="text"
            inputMode="numeric"
            autoComplete="off"
            spellcheck={false}
            value={amountText}
            aria-invalid={error !== undefined && parsed.error !== undefined}
            aria-describedby={`${id}-effect`}
            onInput={(event) => setAmountText(event.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for={`${id}-note`}>
            Note <span class="optional">(optional)</span>
          </label>
          <input
            id={`${id}-note`}
            type="text"
            autoComplete="off"
            maxLength={noteLengthMax}
            value={note}
            onInput={(event) => setNote(event.currentTarget.value)}
          />
        </div>
      </div>
      <p id={`${id}-effect`} class={effect.warning === true ? 'effect warning' : 'effect'}>
        {effect.text}
      </p>
      <div class="buttons">
        <button type="submit" class="primary" disabled={pending} aria-describedby={`${id}-effect`}>
          {pending ? 'Sending…' : 'Confirm'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </form>
  )
}
