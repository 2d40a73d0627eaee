import { capabilities } from '../auth.js';
import { PveError } from '../state.js';
import type { Routes } from './router.js';

/** Access: ticket login (with renewal and TFA), the user list and permissions. */

export function register(r: Routes): void {
  r.on('POST', '/access/ticket', (ctx) => {
    const { auth } = ctx.env;
    let username = ctx.str('username');
    const realm = ctx.optStr('realm');
    if (!username.includes('@') && realm) username = `${username}@${realm}`;
    const password = ctx.str('password');
    const challenge = ctx.optStr('tfa-challenge');
    const denied = () => new PveError(401, 'authentication failure');
    let userid: string;
    if (challenge !== undefined) {
      const pending = auth.verifyTicket(challenge, true);
      const user = auth.users.get(username);
      if (!pending?.tfaPending || pending.userid !== username || !user?.tfa) throw denied();
      const code = password.replace(/^totp:/, '');
      if (code !== user.tfa.totp) throw denied();
      userid = username;
    } else if (password.startsWith('PVE:')) {
      const v = auth.verifyTicket(password);
      if (!v || v.userid !== username) throw denied();
      userid = v.userid;
    } else {
      const user = auth.checkPassword(username, password);
      if (!user) throw denied();
      userid = user.userid;
      const otp = ctx.optStr('otp');
      if (user.tfa && otp === undefined) {
        return { username: userid, ticket: auth.issueTicket(userid, true), NeedTFA: 1 };
      }
      if (user.tfa && otp !== user.tfa.totp) throw denied();
    }
    return {
      username: userid,
      ticket: auth.issueTicket(userid),
      CSRFPreventionToken: auth.issueCsrf(userid),
      clustername: ctx.state.clusterName,
      cap: capabilities(auth.roleOf(userid)),
    };
  });

  r.on('GET', '/access/users', (ctx) =>
    [...ctx.env.auth.users.values()].map((u) => ({
      userid: u.userid,
      enable: u.enabled === false ? 0 : 1,
      expire: 0,
      'realm-type': u.userid.split('@')[1] ?? 'pam',
      ...(u.tfa ? { 'tfa-locked-until': undefined, totp: 1 } : {}),
    })),
  );

  r.on('GET', '/access/permissions', (ctx) => {
    const admin = ctx.auth.role === 'Administrator' ? 1 : 0;
    const caps = capabilities(ctx.auth.role);
    const all: Record<string, number> = {};
    for (const group of Object.values(caps)) for (const [k, v] of Object.entries(group)) if (v || !admin) all[k] = v;
    return { '/': all };
  });
}
