// Drives the API with the official PostgREST client, as a frontend would.
// Usage: node client.mjs <base url>   (prints one JSON object of results)
import { PostgrestClient } from '@supabase/postgrest-js'

const url = process.argv[2]
const tag = Math.random().toString(36).slice(2, 10)
const anon = new PostgrestClient(url)
const out = {}

const pick = ({ data, error, count, status }) => ({ data, error, count, status })

out.filtered = pick(await anon.from('conformance_items')
  .select('id, label:name', { count: 'exact' })
  .gt('id', 2).lt('id', 8)
  .in('name', ['date, dried', 'cherry', 'Grape', 'apple'])
  .order('id', { ascending: false })
  .range(0, 1))
out.or = pick(await anon.from('conformance_items').select('id')
  .or('id.eq.1,name.eq."date, dried",and(price.gt.9,qty.eq.5)').order('id'))
out.nulls = pick(await anon.from('conformance_items').select('id').is('price', null).order('id'))
out.not = pick(await anon.from('conformance_items').select('id').not('active', 'is', true).order('id', { nullsFirst: true }))
out.ilike = pick(await anon.from('conformance_items').select('name').ilike('name', '%GRAPE%'))
out.contains = pick(await anon.from('conformance_items').select('id').contains('tags', ['red']).order('id'))
out.single = pick(await anon.from('conformance_items').select('id, name').eq('id', 2).single())
out.maybe = pick(await anon.from('conformance_items').select('id').eq('id', 99).maybeSingle())
out.head = pick(await anon.from('conformance_items').select('*', { count: 'exact', head: true }))
out.rpc_scalar = pick(await anon.rpc('conformance_add', { a: 1, b: 2 }))
out.rpc_rows = pick(await anon.rpc('conformance_cheaper', { max_price: 3 }).select('id').gt('id', 1).order('id').limit(2))
out.rpc_get = pick(await anon.rpc('parse_domain', { name: 'www.example.co.uk' }, { get: true }))
out.tiers = pick(await anon.from('tiers').select('tier').order('rank'))

const email = `js-${tag}@example.com`
out.signup = pick(await anon.rpc('signup', { email, password: 'correct horse 42' }))
const login = await anon.rpc('login', { email, password: 'correct horse 42' })
out.login_status = login.status
const member = new PostgrestClient(url, { headers: { Authorization: `Bearer ${login.data.token}` } })
out.me = pick(await member.from('me').select('email, tier').single())
out.insert = pick(await member.from('conformance_notes')
  .insert([{ body: `js1 ${tag}`, n: 1 }, { body: `js2 ${tag}` }]).select('body, n'))
out.insert_minimal = pick(await member.from('conformance_notes').insert({ body: `js3 ${tag}`, n: 3 }))
out.upsert = pick(await member.from('conformance_notes')
  .upsert([{ body: `js1 ${tag}`, n: 7 }, { body: `js4 ${tag}`, n: 4 }], { onConflict: 'body' }).select('body, n'))
await member.from('conformance_notes').delete().eq('body', `js4 ${tag}`)
await member.from('conformance_notes').update({ n: 1 }).eq('body', `js1 ${tag}`)
out.duplicate = pick(await member.from('conformance_notes').insert({ body: `js1 ${tag}` }))
out.update = pick(await member.from('conformance_notes').update({ n: 10 }).like('body', `%${tag}`).lt('n', 5).select('body, n').order('body'))
out.delete = pick(await member.from('conformance_notes').delete({ count: 'exact' }).like('body', `%${tag}`).select('body').order('body'))
out.after = pick(await member.from('conformance_notes').select('id').like('body', `%${tag}`))
out.anon_denied = pick(await anon.from('notifications').select('*'))
out.member_notifications = pick(await member.from('notifications').select('*'))
out.bad_filter = pick(await anon.from('conformance_items').select('nope'))

console.log(JSON.stringify(out))
