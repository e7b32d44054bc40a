// Waits for the server, then checks a credit, a balance read and an error answer.
const base = process.argv[2]
const cred = 'abcdefghijklmnopqrstuvwxyz0123456789-_=='
const deadline = Date.now() + 60_000

for (;;) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break
  } catch {
    // not listening yet
  }
  if (Date.now() > deadline) throw new Error('the server did not come up within 60 s')
  await new Promise((resolve) => setTimeout(resolve, 200))
}

const expect = async (method, path, status, body) => {
  const reply = await fetch(`${base}${path}`, { method })
  const text = await reply.text()
  if (reply.status !== status || (body !== undefined && text !== body)) {
    throw new Error(`${method} ${path.split('?')[0]}: expected ${status} ${body ?? ''}, got ${reply.status} ${text}`)
  }
}
await expect('PATCH', `/mod?cred=${cred}&by=1000`, 200, '1000')
await expect('PATCH', `/mod?cred=${cred}&by=-1`, 200, '999')
await expect('GET', `/tot?cred=${cred}`, 200, '999')
await expect('PATCH', `/mod?cred=${cred}&by=-1000`, 402)
console.log('smoke: npm start serves tot and mod')
