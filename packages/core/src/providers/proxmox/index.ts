export { type DownloadResult, SharedDownloads, sharedDownloads } from './downloads.js';
export { parseStat, statCommand } from './guest-access.js';
export { type ProxmoxProviderOptions, resolveOptions } from './options.js';
export { createProxmoxProvider, ProxmoxProvider } from './proxmox-provider.js';
export { backendStatus, hypemanState } from './states.js';
export { UNDO as PROXMOX_UNDO } from './undo.js';
