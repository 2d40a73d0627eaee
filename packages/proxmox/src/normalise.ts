/**
 * PVE answers booleans as 1/0. These keys are booleans wherever they appear in an answer
 * (cluster status, resources, storage, tasks, snapshots, guest agent), so 1/0 under them is read
 * as true/false. Other numbers pass through untouched.
 */
const BOOLEAN_KEYS = new Set([
  'quorate',
  'online',
  'local',
  'template',
  'shared',
  'active',
  'enabled',
  'exited',
  'truncated',
  'out-truncated',
  'err-truncated',
  'vmstate',
  'protected',
  'autostart',
  'onboot',
  'protection',
  'unprivileged',
  'running',
  'select_existing',
  'agent',
  'ha-managed',
  'exists',
]);

export function normaliseBooleans(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normaliseBooleans(value[i], depth + 1);
    return value;
  }
  const obj = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(obj)) {
    if ((v === 0 || v === 1) && BOOLEAN_KEYS.has(k)) obj[k] = v === 1;
    else if (v && typeof v === 'object') obj[k] = normaliseBooleans(v, depth + 1);
  }
  return obj;
}
