#!/usr/bin/env bash
# t_refusals: every refusal cr has happens at dump time (issue 14, item 9).
#
# A refusal site is a message in criu-lite/{fd,state,dump,restore,net}/*.c whose
# string says "unsupported" (the wording refusals use), or one of EXTRA
# (refusals worded otherwise).  REFUSALS lists every site, by its file and
# a fixed fragment of the line that says it, and how the site is shown:
#
#   dump|WORDS|WORKLOAD MODE [OPTION...]   triggered here: WORKLOAD holds
#                      the thing; cr dump (with OPTIONs) must exit non-zero with an error naming the
#                      pid and saying WORDS, leave no inventory.img (no
#                      image directory that looks complete), and the
#                      process must run on untraced and unchanged (its
#                      own checks pass after the refused dump).
#   fn|WORDS|FUNCTION  the same, the process started by FUNCTION (a real
#                      program holding the thing), which also sets
#                      UNCHANGED, a command that checks the thing is still
#                      there after the refused dump.
#   elsewhere|T CASE   triggered by case CASE of test/integration/T (a tree
#                      shape or a setting that test builds); the case must
#                      exist.
#   never|WHY          cannot happen on a kernel or a tree cr dumps (WHY).
#   untested|WHY       could happen, but no test triggers it yet (WHY).
#   restore|WHY        a check of the images at restore: the dump refuses
#                      the same thing first, or it guards damaged images.
#
#   every_site_listed  every site in the sources has a row, every row a
#                      site (a refusal added or reworded must be listed).
#   <workload>_<mode>  one case per dump row.
source "$(dirname "$0")/lib.sh"

SRC=$(cd "$(dirname "$0")/../.." && pwd)
TESTS=$SRC/test/integration

EXTRA='dump with --shell-job|SECCOMP_RET_USER_NOTIF: the listener|share a seccomp filter that'

REFUSALS=(
"fd/deleted.c|where cr makes it again, is gone|dump|is gone|w_lost deleted_dir"
"fd/deleted.c|\"(unsupported)\", what, path, dir|untested|a deleted file, FIFO or directory in a mount namespace of the dump whose directory is gone too: the refusal of w_lost deleted_dir, reached through /proc/PID/root"
"fd/epoll.c|an epoll registration kept alive from elsewhere|dump|kept alive from elsewhere|w_refuse epoll_elsewhere"
"fd/epoll.c|epoll with flags|dump|epoll with flags|w_refuse epoll_flags"
"fd/eventfd.c|eventfd with flags|dump|eventfd with flags|w_refuse eventfd_flags"
"fd/fdshare.c|of the dump \"|never|only unix sockets ask it about other processes of the dump, and a socket has one description: no second one of it can be opened"
"fd/fdshare.c|outside the dump\"|dump|outside the dump|w_refuse memfd_outside"
"fd/fanotify.c|a fanotify group of a content class|dump|content class|w_refuse fanotify_content"
"fd/fanotify.c|a fanotify mark on a mount or a filesystem|dump|on a mount or a filesystem|w_refuse fanotify_mount"
"fd/fanotify.c|\"0x%x: unsupported (only a mark's events are restored)\"|dump|an ignored mask|w_refuse fanotify_ignored"
"fd/fanotify.c|unsupported (a mark on a deleted file)|dump|a mark on a deleted file|w_refuse fanotify_deleted"
"fd/fhandle.c|bytes of events not read yet (nothing|elsewhere|t_realworld2.sh tail_unread"
"fd/inotify.c|has no file handle|never|kernels since 6.5 give every inode a file id for fdinfo (exportfs_encode_fid), even where the filesystem cannot open one: a watch on /proc or a pipe has one and is refused as a watch without a path"
"fd/inotify.c|has an ignored mask|never|inotify marks have no ignored mask (fdinfo prints 0; only fanotify marks set one)"
"fd/inotify.c|a watch on a deleted file|dump|the process holds no fd on it|w_refuse inotify_deleted_child"
"fd/inotify.c|the restore watches the file through the fd of the process that opens it|dump|holds this inotify too|w_refuse inotify_deleted_shared"
"fd/inotify.c|inotify with flags|dump|inotify with flags|w_refuse inotify_flags"
"fd/inet_sk.c|a TCP connection to %s (state %s)|dump|state ESTABLISHED|w_inet established"
"fd/inet_sk.c|a TCP connection that has ended (state CLOSE)\"|dump|that has ended|w_inet ended"
"fd/inet_sk.c|a TCP connection that has ended (state CLOSE, its peer|untested|a TCP socket in CLOSE that sock_diag still lists with its peer: one whose connection ended is unhashed at once, and refused as above"
"fd/inet_sk.c|connection(s) to this listening socket not accepted|dump|not accepted yet|w_inet pending"
"fd/inet_sk.c|TCP MD5 signature keys|dump|TCP_MD5SIG|w_inet md5"
"fd/inet_sk.c|urgent data (MSG_OOB) not read yet|dump|urgent data|w_inet urgent --tcp-established"
"fd/inet_sk.c|TCP-AO authentication keys|untested|a socket with TCP-AO keys (TCP_AO_ADD_KEY, Linux 6.7): Debian 12's headers lack the structures a workload would need"
"fd/inet_sk.c|an upper layer protocol on the connection|untested|kernel TLS (TCP_ULP \"tls\") on a connection: the test machines do not load the tls module"
"fd/inet_mcast.c|in INCLUDE mode with no source|never|only when the kernel runs out of memory adding the first source of a source join (ip_mc_source, ip6_mc_source); every setsockopt that would leave a group in INCLUDE mode without a source leaves the group instead"
"fd/inet_mcast.c|IPV6_MULTICAST_IF on interface index|elsewhere|t_mcast.sh refused_if6_gone"
"fd/inet_mcast.c|an address no device of the namespace has|elsewhere|t_mcast.sh refused_if4_gone"
"fd/sk_opts.c|unlike a new socket's, cannot be|untested|no option of the table is known to do it: every value the suites read back was set again on a new socket of the same kind, but for the multicast TTL and hops that the kernel gives an accepted TCP connection (from the SYN), which no program can set on a TCP socket and cr leaves to the kernel"
"fd/sk_opts.c|a socket of network namespace net:[%lu]|elsewhere|t_mcast.sh refused_other_netns"
"fd/netlink_sk.c|a netlink socket of protocol %u|dump|a netlink socket of protocol 12|w_inet nl_other"
"fd/netlink_sk.c|a netlink socket connected to port id|dump|connected to port id 0 group 1|w_inet nl_connected"
"fd/netlink_sk.c|messages queued for it and not read yet (%u bytes with|elsewhere|t_realworld2.sh ip_monitor_unread"
"fd/netlink_sk.c|whose dump request is still being|untested|a NETLINK_ROUTE dump request answered over several reads and not read to its end: a small dump is answered whole at once, so no workload here is caught in the middle of one"
"fd/memfd.c|hugetlb memfd|dump|hugetlb memfd|w_refuse memfd_hugetlb"
"fd/mqueue.c|unlinked while open|dump|unlinked while open|w_refuse mq_unlinked"
"fd/mqueue.c|with flags 0%o: unsupported (only the access mode|dump|with flags|w_refuse mqueue_flags"
"fd/mqueue.c|which cr does not restore: unsupported|fn|a notification (mq_notify)|py_mq_notify"
"fd/nsfs.c|has nothing to reopen it from|dump|not the process's own uts namespace|w_files nsfs_other"
"fd/pidfd_reaped.c|which cr would not make again): unsupported|untested|a pidfd of a process reaped after it dumped core: the test machines make no core dumps (core_pattern, RLIMIT_CORE)"
"fd/pidfd.c|outside cr's pid namespace|never|cr runs in the initial pid namespace, where every process has a pid"
"fd/pidfd.c|pidfd with flags|dump|pidfd with flags|w_refuse pidfd_flags"
"fd/reg.c|a restore would open that of whatever has pid|dump|no process of the dump|w_lost proc_outside"
"fd/reg.c|files are open (unsupported)|dump|thread|w_lost proc_thread"
"fd/reg.c|which no open of a named file gives back|dump|made with O_TMPFILE|w_lost tmpfile_linked"
"fd/reg.c|\"reopen it by (unsupported)\", p->link, (unsigned long)|dump|no other name in its directory or that the kernel knows|w_refuse hardlink_uncached"
"fd/reg.c|which has no path to reopen it by|dump|no path to reopen it by|w_refuse opath_deleted"
"fd/reg.c|the files of /proc are made afresh|dump|the files of /proc are made afresh|w_refuse opath_proc"
"fd/reg.c|which is no longer the file at that path|dump|no longer the file at that path|w_refuse opath_replaced"
"fd/reg.c|\"node's path (unsupported)\"|dump|its device node was deleted|w_lost chrdev_deleted"
"fd/reg.c|\"by the node's path (unsupported)\"|dump|is no longer the node of its device|w_refuse chr_replaced"
"fd/reg.c|\"with --shell-job (unsupported)\", p->link|dump|is not the shell job's terminal|w_refuse pts_no_shell_job"
"fd/reg.c|dump with --shell-job|elsewhere|t_pty.sh slave_of_tree_refused"
"fd/pty.c|\"(unsupported; dump once they are read)\", n)|untested|bytes written by the slave side while no process of the tree holds the slave: only a slave closed after writing leaves them"
"fd/pty.c|or the master's buffer full): unsupported, dump once they are read|untested|output queued for the master while the slave is stopped by ^S or the master's buffer is full"
"fd/pty.c|whose master is in packet mode|elsewhere|t_pty.sh pair_data_refused"
"fd/pty.c|past canonical mode or IXON (unsupported)|untested|input queued for the slave that holds all 256 byte values, in canonical mode or with IXON"
"fd/pty.c|\"hold as an end-of-file (unsupported; dump once it is read)\");|untested|a NUL typed and queued for a canonical slave (the image holds an end-of-file as a NUL)"
"fd/pty.c|instance: unsupported)|dump|another devpts instance|w_refuse pty_other_devpts"
"fd/signalfd.c|signalfd with flags|dump|signalfd with flags|w_refuse signalfd_flags"
"fd/sk_opts.c|a socket filter that cr cannot read back|untested|an eBPF socket filter (SO_ATTACH_BPF): the workloads load no BPF program"
"fd/sk_opts.c|a socket filter of %u instructions|dump|SO_ATTACH_FILTER|w_inet filter"
"fd/sk_opts.c|socket with flags 0%o|dump|socket with flags|w_inet flags"
"fd/tcp_stream.c|bytes queued (more than %u)|untested|a TCP connection with more than 32 MiB queued unread or unacknowledged (dumped with --tcp-established): the loopback buffers of the tests hold a few MiB at most"
"fd/timerfd.c|timerfd with flags|dump|timerfd with flags|w_refuse timerfd_flags"
"fd/unix_sk.c|its connection to listening socket:[%u] is not accepted \"|elsewhere|t_unix_x.sh refused_embryo_data"
"fd/unix_sk.c|its connection to listening socket:[%u] is not accepted \"|dump|and that listener is in pid|w_refuse unix_listener_outside"
"fd/unix_sk.c|outside the dump, has no \"|elsewhere|t_unix_x.sh ext_unnamed"
"fd/unix_sk.c|outside the dump, has \"|dump|has the relative name|w_refuse unix_ext_relative --ext-unix-sk"
"fd/unix_sk.c|bytes queued from its peer|dump|bytes queued from its peer|w_refuse unix_ext_queued --ext-unix-sk"
"fd/unix_sk.c|not accepted yet whose client is \"|dump|whose client is closed|w_refuse unix_pending_closed"
"fd/unix_sk.c|not accepted yet from socket:[%u], \"|dump|not accepted yet from socket|w_refuse unix_pending_outside"
"fd/unix_sk.c|the file %s in flight (SCM_RIGHTS), \"|dump|which its path no longer leads to|w_refuse unix_file_gone"
"fd/unix_sk.c|the file %s in flight \"|dump|whose description pid|w_refuse unix_file_shared"
"fd/unix_sk.c|carries sockets in \"|dump|carries sockets in flight|w_refuse unix_flight_deep"
"fd/unix_sk.c|a pipe in flight (SCM_RIGHTS: %s) that \"|elsewhere|t_unix_x.sh refused_rights"
"fd/unix_sk.c|its queue holds a pipe in flight \"|dump|whose very description pid|w_refuse unix_pipe_held"
"fd/unix_sk.c|a pipe in flight (SCM_RIGHTS: %s) \"|dump|is open elsewhere|w_refuse unix_pipe_both"
"fd/unix_sk.c|a pipe in flight (SCM_RIGHTS: %s) \"|dump|is open elsewhere|w_refuse unix_pipe_twice"
"fd/unix_sk.c|its queue holds socket:[%u] in flight|dump|which is not a unix socket|w_refuse unix_flight_netlink"
"fd/unix_sk.c|the unix socket socket:[%u] in|dump|which is held outside the dump|w_refuse unix_flight_outside"
"fd/unix_sk.c|senders' credentials \"|dump|in a pid namespace other than cr's|w_refuse unix_creds_pidns"
"fd/unix_sk.c|has no sender pid in its|dump|has no sender pid|w_refuse unix_creds_late"
"fd/unix_sk.c|is in pid %d, outside the dump|dump|outside the dump|w_refuse unix_peer_outside"
"fd/unix_sk.c|is open in no \"|elsewhere|t_unix_x.sh refused_lost_peer"
"fd/unix_sk.c|which cr cannot reach: unsupported|untested|a socket file moved in cr's mount namespace that cr then cannot stat there: only a race (moved again between SIOCUNIXFILE and the stat) reaches it"
"fd/unix_sk.c|in a mount namespace other than cr's: unsupported|fn|in a mount namespace other than cr's|py_unix_moved_mntns"
"fd/unix_sk.c|its file moved out of its root|fn|moved out of its root|py_unix_moved_chroot"
"fd/unix_sk.c|which has no name and is not|dump|has no name and is not connected back|w_refuse unix_dgram_half"
"fd/unix_sk.c|whose file is \"|dump|of its group is bound there too|w_refuse unix_same_path"
"fd/unix_sk.c|unsupported socket type|never|AF_UNIX sockets are stream, datagram or seqpacket ones, all dumped"
"fd/unix_sk.c|unsupported socket state|never|sock_diag shows a unix socket only listening, established or closed"
"fd/unix_sk.c|connections not accepted yet (cr takes|dump|257 connections not accepted yet|w_refuse unix_backlog"
"fd/unix_sk.c|its queue holds file descriptors in flight \"|never|a message carries at most SCM_MAX_FD (253) fds, and a peek of a stream queue stops after the first write with fds: the peek takes them all, and CMSG_ROOM holds them with the credentials"
"fd/unix_sk.c|its queue holds file descriptors in flight \"|dump|SCM_RIGHTS: /dev/null|w_refuse unix_scm_dgram"
"fd/unix_sk.c|file descriptors in flight (SCM_RIGHTS) \"|dump|cannot tell where a write that carried fds starts|w_refuse unix_scm_rights"
"fd/unix_sk.c|file descriptors in flight (SCM_RIGHTS) \"|dump|among more writes than the 2 stretches|w_refuse unix_scm_tail"
"fd/unix_sk.c|queued on a stream socket \"|dump|whose peer is closed|w_refuse unix_scm_closed"
"fd/unix_sk.c|a pending socket error|dump|a pending socket error|w_refuse unix_so_error"
"fd/unix_sk.c|whose directory cannot be made again|dump|not a directory|w_lost unix_dir_file"
"fd/unix_sk.c|where the restore would bind it, is deleted|dump|is deleted|w_lost unix_cwd_gone"
"state/aio.c|mapped in part or privately|untested|an aio ring unmapped in part or remapped private by the process"
"state/aio.c|with a protection changed since io_setup|untested|mprotect of an aio ring"
"state/aio.c|whose header cr does not know|untested|a ring header of a future kernel (new magic, features or length)"
"state/aio.c|whose header does not fit its size|untested|a ring whose mapping was cut by mremap"
"state/aio.c|process's context (inherited across fork)|elsewhere|t_aio.sh refused_forked"
"fd/unix_sk.c|which made the connection (SO_PEERCRED), is another process|restore|the dump refuses it first (check_peer_cred: a maker outside the dump that runs, or created before the socket)"
"fd/unix_sk.c|has other credentials (SO_PEERCRED), |restore|the dump refuses it first (check_peer_cred: a listener no longer open)"
"fd/unix_sk.c|unsupported: connected to socket:[%u] by \"|elsewhere|t_peercred.sh refused_closed_listener"
"fd/unix_sk.c|its connection was made by \"|elsewhere|t_peercred.sh refused_maker_branch"
"fd/unix_sk.c|its connection was made by pid %d \"|elsewhere|t_peercred.sh refused_dead_nested"
"fd/unix_sk.c|has no pid in the pid namespace of pid|never|check_peer_cred refuses first: a maker in the dump descends from the process that makes the connection again (else 'a process the restore creates before'), so its pid namespace is that process's or one below it"
"fd/unix_sk.c|its connection was made by pid %d |elsewhere|t_peercred.sh refused_outside"
"state/attrs.c|is no removed directory|never|a working directory is a directory, and its link says deleted only once it was removed"
"state/autogroup.c|restored in cr's session and autogroup|fn|its session's leader|sh_autogroup_outside"
"state/cgroup.c|\"unsupported\", t->pid, t->threads|elsewhere|t_cgroup.sh threaded_refused"
"state/files.c|\"unsupported kind: %s (%s)\"|dump|unsupported kind: socket (RAW)|w_inet raw"
"state/files.c|\"unsupported kind: %s (%s)\"|dump|unsupported kind: [userfaultfd]|w_refuse userfaultfd"
"state/files.c|\"unsupported kind: %s (%s)\"|dump|unsupported kind: secret memory (memfd_secret|w_refuse secretmem_fd"
"state/files.c|share one %s: unsupported kind|dump|share one namespace|w_refuse nsfs_shared"
"state/files.c|before pid %d exists (unsupported|dump|/stat|w_lost proc_shared"
"state/fown.c|the dump that holds it: unsupported|elsewhere|t_fown.sh owner_outside_refused"
"state/fown.c|whose events cr cannot read back: unsupported|fn|(fcntl F_NOTIFY, dnotify)|py_dnotify"
"state/posix_timers.c|among %zu threads: unsupported kind|fn|the CPU clock of the thread that made it|py_thread_clock_timer"
"state/ipcns.c|POSIX message queues: unsupported|fn|more than 64 POSIX message queues|ipc_many_mqueues"
"state/ipcns.c|messages (mq_notify): unsupported|elsewhere|t_ns.sh refused_ipc_notify"
"state/ipcns.c|unsupported (a SysV shared memory mapping)|elsewhere|t_ns.sh refused_ipc_attached"
"state/ipcns.c|id %d is %s: unsupported|fn|is locked (SHM_LOCK): unsupported|ipc_shm_locked"
"state/ipcns.c|unsupported (more than %u)|fn|unsupported (more than|ipc_shm_big"
"state/ipcns.c|SysV objects of a kind: unsupported|fn|more than 256 SysV objects of a kind|ipc_many_queues"
"state/ipcns.c|holds semaphore sets: unsupported|elsewhere|t_ns.sh refused_threads_with_sets"
"state/keyrings.c|%s (serial %lld): unsupported (cr does not dump keys)|fn|a process keyring|py_process_keyring"
"state/keyrings.c|(serial %lld): unsupported|fn|a thread keyring|py_thread_keyring"
"state/landlock.c|by another security module's ptrace rule: unsupported|elsewhere|t_realworld3.sh py_landlock"
"state/mempolicy.c|a NUMA memory policy (%s, set_mempolicy): unsupported|elsewhere|t_realworld3.sh numactl_interleave"
"state/ioflusher.c|PR_SET_IO_FLUSHER (its task flags 0x%x): unsupported|untested|setting PR_SET_IO_FLUSHER needs CAP_SYS_RESOURCE, which root lacks on the test machines; the flags' reading is unit-tested (test_proc test_stat_io_flusher)"
"state/mempolicy.c|0x%llx-0x%llx: unsupported (cr does not restore|elsewhere|t_realworld3.sh py_mbind"
"state/locks.c|held only through a mapping of the dump: unsupported|fn|held only through a mapping of the dump|py_ofd_mapped_alone"
"state/locks.c|outside it: unsupported (cr cannot tell which)|fn|cr cannot tell which|py_ofd_mapped_shared"
"state/locks.c|cr does not restore leases or delegations|dump|lease|w_locks lease"
"state/locks.c|\"a %s %s on a %s: unsupported kind\"|dump|unsupported kind|w_refuse flock_fifo"
"state/locks.c|\"fd table: unsupported\"|never|a process that shares its fd table with another is refused first (state/sharing.c, 'fd table')"
"state/locks.c|that none of its fds shows|fn|none of its fds shows|py_flock_mapped_twice"
"state/locks.c|dump, shares: unsupported|elsewhere|t_locks.sh refuse_shared_outside"
"state/mem.c|unsupported special mapping|never|every special mapping x86_64 Linux gives a process (vdso, vvar, vsyscall, heap, stack) is known; another one ([uprobes]) needs a uprobe on the process"
"state/mem.c|(deleted): unsupported kind|dump|(deleted): unsupported kind (secret memory (memfd_secret|w_refuse secretmem_map"
"state/mem.c|unsupported (shmat attaches a segment whole)|elsewhere|t_maps.sh refused_sysv_part"
"state/mntns.c|of: unsupported propagation|untested|a slave of a peer group other than the one of cr's mount it copies: t_mntns makes only private, shared and unbindable mounts and slaves of cr's"
"state/mntns.c|peers with another mount of the namespace or of cr's: unsupported propagation|untested|a peer group inside the namespace (two mounts of it in one group): listed in the README as refused, no test makes one"
"state/mntns.c|return refuse(m, err, \"another mount hides it: unsupported\")|untested|a bind mount or a second mount under another mount at the same place"
"state/mntns.c|a bind mount whose source cr finds at no path of its own|untested|a bind mount of a host path that cr's namespace no longer shows"
"state/mntns.c|a mount, or deleted): unsupported|untested|a file of a namespace tmpfs with a hard link outside the tmpfs's view (under a mount, or deleted)"
"state/mntns.c|walk_refuse(w, rel, \"another mount hides it: unsupported\"|untested|a tmpfs whose root another mount hides"
"state/mntns.c|it has extended attributes, which cr does not keep|untested|a namespace tmpfs file with an xattr (user.* xattrs on tmpfs need 6.6+ and a test that sets one)"
"state/mntns.c|a device node: unsupported|fn|a device node: unsupported|tmpfs_mknod"
"state/mntns.c|a bind mount of a directory of a tmpfs of the namespace: unsupported|untested|a bind mount of a subdirectory of a namespace tmpfs whose source is itself a bind"
"state/mntns.c|a proc: unsupported|untested|a second mount of a sysfs made in the namespace"
"state/mntns.c|return refuse(m, err, \"another mount hides it: unsupported\");|untested|a bind of a namespace tmpfs hidden by a later mount"
"state/mntns.c|tmpfs reaches now: unsupported|untested|a bind mount of a tmpfs part whose path was removed since"
"state/mntns.c|the root of the namespace is not cr's (pivot_root)|untested|pivot_root inside the namespace"
"state/mntns.c|listed before the mount it is on (a moved mount)|untested|mount --move of a mount below a later one"
"state/mntns.c|cr's namespace too: unsupported|elsewhere|t_mntns.sh host_propagation"
"state/mntns.c|its mountpoint is not there in cr's mount namespace|untested|a mount on a directory made in the namespace on a mount of cr's that cr no longer has"
"state/mntns.c|a mount of a part of its file system: unsupported|untested|a bind mount of part of a sysfs or proc"
"state/mntns.c|tmpfs and bind mounts of host paths): unsupported|elsewhere|t_mntns.sh overlay_refused"
"state/mntns.c|cr's at the same place hides, so the restore cannot set them|elsewhere|t_mntns.sh hidden_shared_refused"
"state/mntns.c|s->host.v[j].id, s->host.v[j].mountpoint|elsewhere|t_mntns.sh host_umount_refused"
"state/mntns.c|pid, e->mountpoint, link|untested|a proc mounted in the namespace for another pid namespace than the one of the process that makes the namespace"
"state/ns.c|its own: unsupported\", t->pid, t->core->root|untested|a chroot inside a mount namespace of the dump"
"state/ns.c|only unshare makes them differ|never|only unshare(CLONE_NEWTIME) makes the two differ, and it makes the one for children new, never cr's own"
"state/ns.c|\"unsupported\", nodes[plan->creator[id]]|never|(two processes that both made the same time namespace for their children) children enter the time namespace their parent made for them as their own: only one process has it for its children alone"
"state/ns.c|not a descendant of it: unsupported|elsewhere|t_ns.sh refused_time_outsider"
"state/ns.c|differs from its main thread's: unsupported|elsewhere|t_ns.sh refused_thread"
"state/ns.c|differs from cr's: unsupported (%s)|elsewhere|t_ns.sh refused_cgroup"
"state/ns.c|(it would stay in the old one)|elsewhere|t_netns.sh refused_shared"
"net/netns_dump.c|is not persistent: unsupported|elsewhere|t_netns.sh refused_tun_transient"
"net/netns_dump.c|has an fd attached: unsupported|elsewhere|t_netns.sh refused_tun_attached"
"fd/reg.c|attached to the tun/tap device %.*s: unsupported|elsewhere|t_netns.sh refused_tun_fd"
"net/netns_dump.c|unsupported without \"|elsewhere|t_netns.sh external_refused"
"net/netns_dump.c|unsupported, its peer is in a network namespace other than cr's, \"|elsewhere|t_netns.sh external_elsewhere"
"net/netns_dump.c|not named lo: unsupported|fn|not named lo|lo_renamed"
"net/netns_dump.c|unsupported, of no kind netlink names|untested|a link without a kind: a physical device moved into the namespace"
"net/netns_dump.c|link %s of kind %s: unsupported|elsewhere|t_netns.sh refused_vxlan"
"net/netns_dump.c|filters vlans: unsupported|untested|the test kernel has no CONFIG_BRIDGE_VLAN_FILTERING: vlan_filtering cannot be set there (EOPNOTSUPP)"
"net/netns_dump.c|unsupported master (ifindex %u)|never|a master is a link of the namespace, and one of another kind than bridge is refused by its kind first"
"net/netns_dump.c|a route with an unsupported nexthop|untested|an MPLS or RTA_VIA route (needs the mpls modules)"
"net/netns_dump.c|a route of family %d: unsupported|untested|a route of another family than IPv4 and IPv6 (MPLS)"
"net/netns_dump.c|link %s: unsupported %s queueing discipline|elsewhere|t_netns.sh refused_qdisc"
"net/netns_dump.c|nexthop object %u: unsupported|elsewhere|t_netns.sh refused_nexthop"
"net/netns_dump.c|an IPsec %s: unsupported|elsewhere|t_netns.sh refused_xfrm"
"net/netns_fw.c|unsupported, cannot read it|untested|nft and iptables-legacy-save are installed wherever the tests run (install-deps.sh)"
"net/netns_fw.c|unsupported, a new namespace does not take the rules|untested|rules a program lists but cannot load back (an nft ruleset with xt expressions of iptables-nft)"
"net/netns_dump.c|legacy arptables table %s: unsupported|untested|arptables is not installed on the test machines"
"net/netns_sysctl.c|does not take it: unsupported|untested|a sysctl a new network namespace refuses to be written"
"net/netns_sysctl.c|reads it back as '%s': unsupported|untested|a sysctl a new network namespace reads back otherwise"
"state/pidns.c|its unshare is unsupported|elsewhere|t_pidns.sh unshare_after_fork_refused"
"state/pidns.c|\"unsupported\", t->zombie|elsewhere|t_pidns.sh init_two_deep_refused"
"state/posix_timers.c|notifies by '%s': unsupported kind|never|the kernel shows a timer's notification only as signal, thread or none, all restored"
"state/posix_timers.c|\"unsupported kind\", e->id, e->notify_tid|elsewhere|t_thread_timers.sh refused_exited_thread"
"state/posix_timers.c|runs on the CPU clock of pid|dump|CPU clock of pid|w_refuse timer_cpuclock"
"dump/collect.c|a speculation mitigation it chose|untested|on these hosts neither speculative store bypass nor indirect branch speculation is controllable per task (PR_SET_SPECULATION_CTRL fails with ENXIO and EPERM): no process here can choose one; test_proc's test_status_speculation checks which /proc status words count as chosen"
"state/threads.c|TSC mode %d: unsupported|never|PR_GET_TSC gives PR_TSC_ENABLE or PR_TSC_SIGSEGV, the only two modes the kernel has"
"state/threads.c|ARCH_GET_CPUID %lld: unsupported|never|ARCH_GET_CPUID gives 0 or 1"
"state/threads.c|machine-check kill policy %lld: unsupported|never|PR_MCE_KILL_GET gives PR_MCE_KILL_LATE, PR_MCE_KILL_EARLY or PR_MCE_KILL_DEFAULT, the only three the kernel has"
"state/posix_timers.c|no thread of the process: unsupported kind|fn|no thread of the process|py_timer_dead_thread"
"state/posix_timers.c|on clock %d: unsupported kind|never|timer_create takes only the clocks cr knows, and CPU clocks"
"state/sessions.c|which neither it nor its parent leads: unsupported|elsewhere|t_tree.sh foreign_session_refused"
"state/sharing.c|each would come back with a copy of its own|elsewhere|t_unsupported.sh clone_files"
"state/shmem.c|\"the dump: unsupported (the sharing|dump|is open in pid|w_refuse memfd_mapped_outside"
"state/shmem.c|restored)\", o->pid, source_name(o)|elsewhere|t_maps.sh refused_outside"
"state/shmem.c|mapped writable before: unsupported|dump|F_SEAL_FUTURE_WRITE and mapped writable|w_refuse memfd_future_write"
"state/shmem.c|not a regular file: unsupported|untested|a shared mapping of a deleted node of a device (a copy made with mknod, then removed): the kernel makes one of /dev/zero shared memory, and the other mappable devices (/dev/mem, framebuffers, DRM) need raw I/O or hardware"
"state/shmem.c|still linked under another name|dump|still linked under another name|w_refuse vma_deleted_linked"
"state/shmem.c|of another ipc namespace|dump|of another ipc namespace|w_refuse sysv_other_ipcns"
"state/shmem.c|removed and locked (SHM_LOCK)|dump|removed and locked|w_refuse sysv_removed_locked"
"state/shmem.c|go with the dumped processes: unsupported|untested|needs kernel.shm_rmid_forced=1, a setting of the whole machine that would take the segments of the tests run beside it"
"state/shmem.c|\"unsupported\", t->pid);|untested|a process whose executable was deleted and is no longer mapped: it runs code mapped from elsewhere after unmapping its own, or set its executable with PR_SET_MM_EXE_FILE (needs CAP_SYS_RESOURCE, which these tests lack, and the old one unmapped)"
"state/ctty.c|which alone the restoring terminal replaces|dump|which alone the restoring terminal replaces|w_refuse ctty_other --shell-job"
"state/ctty.c|holds no fd on it to give it back with|dump|holds no fd on it to give it back with|w_refuse ctty_fg_other"
"state/track.c|unsupported: it is registered with a|elsewhere|t_precopy.sh own_userfaultfd"
"state/vmflags.c|unsupported: %s (VmFlags|dump|a userfaultfd registration (missing pages)|w_refuse uffd_missing"
"state/vmflags.c|unsupported: protection key|never|this machine's CPUs have no protection keys (no pku in /proc/cpuinfo)"
"state/seccomp.c|SECCOMP_RET_USER_NOTIF: the listener|dump|SECCOMP_RET_USER_NOTIF|w_seccomp notify"
"state/seccomp.c|share a seccomp filter that|dump|share a seccomp filter|w_seccomp partial"
"restore/tree.c|the group's leader is outside|restore|a check of pstree.img: the dump takes process groups from /proc, where a group without its leader in the tree is refused by state/sessions.c"
)

# Every refusal site: "FILE<TAB>LINE TEXT".
refusal_sites() {
	( cd "$SRC/criu-lite" &&
		grep -nE "\"[^\"]*(unsupported|$EXTRA)" fd/*.c state/*.c dump/*.c restore/*.c net/*.c |
		grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*|//)' |
		sed -E 's/^([^:]+):[0-9]+:[[:space:]]*/\1\t/' )
}

every_site_listed() {
	local sites file text row rfile frag how arg found missing=() stale=()
	sites=$(refusal_sites)
	[ -n "$sites" ] || { REASON="no refusal site found in $SRC/criu-lite"; return 1; }
	while IFS=$'\t' read -r file text; do
		found=
		for row in "${REFUSALS[@]}"; do
			IFS='|' read -r rfile frag _ <<<"$row"
			[ "$rfile" = "$file" ] && [[ $text == *"$frag"* ]] && { found=1; break; }
		done
		[ -n "$found" ] || missing+=("$file: $text")
	done <<<"$sites"
	for row in "${REFUSALS[@]}"; do
		IFS='|' read -r rfile frag how arg _ <<<"$row"
		grep -F -- "$frag" <<<"$(grep -F "$rfile"$'\t' <<<"$sites")" >/dev/null || stale+=("$rfile: $frag")
		if [ "$how" = elsewhere ]; then
			read -r t c <<<"$arg"
			grep -qE "^run_case $c( |$)" "$TESTS/$t" 2>/dev/null || stale+=("$rfile: $frag: no case $c in $t")
		fi
	done
	[ ${#missing[@]} -eq 0 ] || { REASON="refusals not listed in t_refusals: ${missing[*]}"; return 1; }
	[ ${#stale[@]} -eq 0 ] || { REASON="rows of t_refusals without their refusal: ${stale[*]}"; return 1; }
}

# ---- real programs in an ipc namespace of their own (fn rows) ----------------

# In the ipc namespace of WL_PID: OPTION of ipcs, its lines with key 0x.
ipcs_in() {
	nsenter -t "$WL_PID" -i ipcs "$1" | grep -c '^0x'
}

# python3, in an ipc namespace of its own, runs CODE (with libc as c), then
# says ready and sleeps.
py_in_ipcns() {
	# shellcheck disable=SC2016
	real_start "$CASE_TMP/py.out" "$CASE_TMP" /usr/bin/python3 unshare -i /usr/bin/python3 -c '
import ctypes, sys, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
'"$1"'
open(sys.argv[1], "w").close()
time.sleep(1000)' "$CASE_TMP/py.ready" || return 1
	wait_until 10 test -e "$CASE_TMP/py.ready" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
}

# python3 registered with mq_notify for SIGUSR1 on a queue of cr's ipc
# namespace (the host's, a name of this case's): a message sent there
# signals it, and it counts (an ipc namespace of the tree's own holding
# such a queue is refused there first: t_ns/refused_ipc_notify).
py_mq_notify() {
	MQ_NAME=/cr-refusals-$$
	mkdir -p "$CASE_TMP/py"
	real_start "$CASE_TMP/py.out" "$CASE_TMP" /usr/bin/python3 /usr/bin/python3 -c '
import ctypes, os, signal, sys, time
d, name = sys.argv[1], sys.argv[2].encode()
rt = ctypes.CDLL("librt.so.1", use_errno=True)
def got(s, f):
    open(d + "/count", "a").write("x")
signal.signal(signal.SIGUSR1, got)
q = rt.mq_open(name, os.O_RDWR | os.O_CREAT, 0o600, None)
if q < 0:
    sys.exit("mq_open: %d" % ctypes.get_errno())
ev = (ctypes.c_int * 16)()
ev[2] = signal.SIGUSR1   # sigev_signo, after the 8-byte sigev_value; sigev_notify 0: SIGEV_SIGNAL
if rt.mq_notify(q, ev) < 0:
    sys.exit("mq_notify: %d" % ctypes.get_errno())
open(d + "/ready", "w").close()
while True:
    time.sleep(1)' "$CASE_TMP/py" "$MQ_NAME" || return 1
	wait_until 10 test -e "$CASE_TMP/py/ready" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	# shellcheck disable=SC2016
	UNCHANGED='mq_send_unlink "$MQ_NAME" && wait_until 5 grep -qx x "$CASE_TMP/py/count"'
}

# mq_send_unlink NAME: a message to the host's queue NAME, which is then
# unlinked (its holders keep it).
mq_send_unlink() {
	/usr/bin/python3 -c '
import ctypes, os, sys
rt = ctypes.CDLL("librt.so.1", use_errno=True)
name = sys.argv[1].encode()
q = rt.mq_open(name, os.O_WRONLY)
ok = q >= 0 and rt.mq_send(q, b"m", 1, 0) == 0
rt.mq_unlink(name)
sys.exit(0 if ok else 1)' "$1"
}

# python3 makes a timer on its thread's own CPU clock from a second thread.
py_thread_clock_timer() {
	real_start "$CASE_TMP/py.out" "$CASE_TMP" /usr/bin/python3 /usr/bin/python3 -c '
import ctypes, sys, threading, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
def worker():
    t = ctypes.c_void_p()
    if c.timer_create(3, None, ctypes.byref(t)) < 0:   # CLOCK_THREAD_CPUTIME_ID
        sys.exit("timer_create: %d" % ctypes.get_errno())
    open(sys.argv[1], "w").close()
    time.sleep(1000)
threading.Thread(target=worker, daemon=True).start()
time.sleep(1000)' "$CASE_TMP/py.ready" || return 1
	wait_until 10 test -e "$CASE_TMP/py.ready" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	# shellcheck disable=SC2016
	UNCHANGED='grep -q "^ID:" /proc/$WL_PID/timers'
}

# python3 listening on a unix socket whose file was moved to another
# directory since the bind: in a mount namespace of its own ($1 = mntns),
# or chrooted and moved out of its root (chroot).
py_unix_moved() {
	local root=$CASE_TMP/root
	mkdir -p "$root/a" "$CASE_TMP/b"
	local prog='
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
if sys.argv[1] == "chroot":
    os.chroot(sys.argv[2])
    os.chdir("/")
    s.bind("/a/s.sock")
else:
    s.bind(sys.argv[2] + "/a/s.sock")
s.listen()
open(("/" if sys.argv[1] == "chroot" else sys.argv[2] + "/") + "bound", "w").close()
time.sleep(1000)'
	if [ "$1" = mntns ]; then
		real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 unshare -m --propagation private python3 -c "$prog" mntns "$root" || return 1
	else
		real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 python3 -c "$prog" chroot "$root" || return 1
	fi
	wait_until 10 test -e "$root/bound" || { REASON="python3 did not bind: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	if [ "$1" = mntns ]; then
		nsenter -t "$WL_PID" -m mv "$root/a/s.sock" "$CASE_TMP/b/s.sock" || { REASON="mv in its mount namespace"; return 1; }
	else
		mv "$root/a/s.sock" "$CASE_TMP/b/s.sock" || { REASON="mv out of its root"; return 1; }
	fi
	UNCHANGED="[ -S '$CASE_TMP/b/s.sock' ] && grep -q ' /a/s.sock\$\| $root/a/s.sock\$' /proc/net/unix"
}

# python3 holding an OFD lock through a mapping only (the fd closed):
# alone ($1 = alone), or with its parent, outside the dump, mapping the
# file too (shared).
py_ofd_mapped() {
	mkdir -p "$CASE_TMP/py"
	real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 python3 -c '
import ctypes, fcntl, os, struct, sys, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
c.mmap.restype = ctypes.c_void_p
c.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
d = sys.argv[2]
fd = os.open(d + "/f", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 4096)
if c.mmap(None, 4096, 3, 1, fd, 0) in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap: %d" % ctypes.get_errno())
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 100, 0))
os.close(fd)
if sys.argv[1] == "shared":
    child = os.fork()
    if child:
        open(d + "/pid", "w").write("%d" % child)
        time.sleep(1000)
else:
    open(d + "/pid", "w").write("%d" % os.getpid())
time.sleep(1000)' "$1" "$CASE_TMP/py" || return 1
	wait_until 10 test -s "$CASE_TMP/py/pid" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	WL_PID=$(cat "$CASE_TMP/py/pid")
	track_pid "$WL_PID"
	grep -q "OFDLCK  *ADVISORY  *WRITE  *-1 .*:$(stat -c %i "$CASE_TMP/py/f") 0 99\$" /proc/locks ||
		{ REASON="no OFD lock on the file: $(grep OFD /proc/locks)"; return 1; }
	UNCHANGED="grep -q 'OFDLCK  *ADVISORY  *WRITE  *-1 .*:$(stat -c %i "$CASE_TMP/py/f") 0 99\$' /proc/locks"
}

# python3 watching a directory with F_NOTIFY (dnotify, signal SIGRTMIN+1,
# multishot): each file made there signals it, and it counts them.
py_dnotify() {
	mkdir -p "$CASE_TMP/py/w"
	real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 python3 -c '
import fcntl, os, signal, sys, time
d = sys.argv[1]
n = [0]
def got(s, f):
    n[0] += 1
    open(d + "/count.tmp", "w").write("%d" % n[0])
    os.rename(d + "/count.tmp", d + "/count")
signal.signal(signal.SIGRTMIN + 1, got)
fd = os.open(d + "/w", os.O_RDONLY)
fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGRTMIN + 1)
fcntl.fcntl(fd, fcntl.F_NOTIFY, fcntl.DN_CREATE | fcntl.DN_MULTISHOT)
open(d + "/ready", "w").close()
while True:
    time.sleep(1)' "$CASE_TMP/py" || return 1
	wait_until 10 test -e "$CASE_TMP/py/ready" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	touch "$CASE_TMP/py/w/a"
	wait_until 5 grep -qx 1 "$CASE_TMP/py/count" || { REASON="no dnotify signal before the dump"; return 1; }
	UNCHANGED="touch '$CASE_TMP/py/w/b' && wait_until 5 grep -qx 2 '$CASE_TMP/py/count'"
}

py_ofd_mapped_alone() { py_ofd_mapped alone; }

# python3 holding a key in a keyring of its own, a process keyring
# (KEY_SPEC_PROCESS_KEYRING, -2) or the thread keyring (-1) of its second
# thread, made by KEYCTL_GET_KEYRING_ID with create set.
py_keyring() {
	local key=crkey$$$1
	real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 python3 -c '
import ctypes, os, sys, threading, time
c = ctypes.CDLL(None, use_errno=True)
d, spec, key = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
def hold():
    ring = c.syscall(250, 0, ctypes.c_long(spec), 1)
    if ring < 0 or c.syscall(248, b"user", key, b"v", 1, ctypes.c_long(ring)) < 0:
        sys.exit("keyctl: %d" % ctypes.get_errno())
    open(d + "/ready", "w").close()
    time.sleep(1000)
if spec == -1:
    threading.Thread(target=hold).start()
    time.sleep(1000)
hold()' "$CASE_TMP" "$1" "$key" || return 1
	wait_until 10 test -e "$CASE_TMP/ready" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	UNCHANGED="grep -q ' user  *$key: ' /proc/keys"
}

py_process_keyring() { py_keyring -2; }

# sleep, whose session's leader (sh, left out of the dump) set the session's
# autogroup to nice 7: dumped alone, it would land in cr's autogroup.
sh_autogroup_outside() {
	local child
	real_start "$CASE_TMP/sh.out" "$CASE_TMP" sh sh -c 'echo 7 > /proc/self/autogroup; sleep 1000 & wait' || return 1
	wait_until 5 test -n "$(cat /proc/"$WL_PID"/task/*/children)" || { REASON="sh started no sleep"; return 1; }
	child=$(cat /proc/"$WL_PID"/task/*/children | tr -d ' ')
	wait_until 5 running_free "$child" "$(readlink -f "$(command -v sleep)")" || { REASON="no sleep: $(describe_pid "$child")"; return 1; }
	WL_PID=$child WL_EXE=$(readlink -f "$(command -v sleep)")
	grep -q ' nice 7$' /proc/"$WL_PID"/autogroup || { REASON="autogroup: $(cat /proc/"$WL_PID"/autogroup)"; return 1; }
	UNCHANGED="grep -q ' nice 7\$' /proc/$WL_PID/autogroup"
}
py_thread_keyring() { py_keyring -1; }

# python3 with a timer on the CPU clock of a thread that has exited since
# (the kernel keeps the timer; its clock names the gone tid).
py_timer_dead_thread() {
	real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 python3 -c '
import ctypes, os, sys, threading, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
clk = ctypes.c_int()
got, done = threading.Event(), threading.Event()
def worker():
    if c.pthread_getcpuclockid(ctypes.c_ulong(threading.get_ident()), ctypes.byref(clk)) != 0:
        sys.exit("pthread_getcpuclockid")
    got.set()
    done.wait()
t = threading.Thread(target=worker)
t.start()
got.wait()
sev = (ctypes.c_int * 16)()
sev[3] = 1   # sigev_notify: SIGEV_NONE
tid = ctypes.c_void_p()
if c.timer_create(clk, sev, ctypes.byref(tid)) < 0:
    sys.exit("timer_create: %d" % ctypes.get_errno())
done.set()
t.join()
open(sys.argv[1] + "/ready", "w").close()
time.sleep(1000)' "$CASE_TMP" || return 1
	wait_until 10 test -e "$CASE_TMP/ready" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	# shellcheck disable=SC2016
	UNCHANGED='grep -q "^ID:" /proc/$WL_PID/timers'
}

# sleep in a network namespace of its own whose loopback was renamed.
lo_renamed() {
	real_start "$CASE_TMP/sleep.out" "$CASE_TMP" sleep unshare -n sh -c 'ip link set lo name lo2 && exec sleep 1000' || return 1
	# shellcheck disable=SC2016
	UNCHANGED='nsenter -t "$WL_PID" -n ip link show lo2 >/dev/null'
}

# sleep in a mount namespace of its own, with a tmpfs holding a device
# node made with mknod.
tmpfs_mknod() {
	mkdir -p "$CASE_TMP/t"
	real_start "$CASE_TMP/sleep.out" "$CASE_TMP" sleep unshare -m --propagation private sh -c \
		"mount -t tmpfs none '$CASE_TMP/t' && mknod '$CASE_TMP/t/null' c 1 3 && exec sleep 1000" || return 1
	UNCHANGED="nsenter -t \"\$WL_PID\" -m test -c '$CASE_TMP/t/null'"
}

# python3 flocks a file it maps, closes the fd and forks: the lock is held
# through the mapping of two processes of the dump (at restore each
# would map its own description).
py_flock_mapped_twice() {
	mkdir -p "$CASE_TMP/py"
	real_start "$CASE_TMP/py.out" "$CASE_TMP" python3 python3 -c '
import ctypes, fcntl, os, sys, time
c = ctypes.CDLL("libc.so.6", use_errno=True)
c.mmap.restype = ctypes.c_void_p
c.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
d = sys.argv[1]
fd = os.open(d + "/f", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 4096)
if c.mmap(None, 4096, 3, 1, fd, 0) in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap: %d" % ctypes.get_errno())
fcntl.flock(fd, fcntl.LOCK_EX)
os.close(fd)
if os.fork() == 0:
    time.sleep(1000)
open(d + "/ready", "w").close()
time.sleep(1000)' "$CASE_TMP/py" || return 1
	wait_until 10 test -e "$CASE_TMP/py/ready" || { REASON="python3 did not get ready: $(cat "$CASE_TMP/py.out.err")"; return 1; }
	UNCHANGED="grep -q 'FLOCK  *ADVISORY  *WRITE  *$WL_PID .*:$(stat -c %i "$CASE_TMP/py/f") ' /proc/locks"
}
py_ofd_mapped_shared() { py_ofd_mapped shared; }

py_unix_moved_mntns() { py_unix_moved mntns; }
py_unix_moved_chroot() { py_unix_moved chroot; }

ipc_many_mqueues() {
	py_in_ipcns '
attr = (ctypes.c_long * 8)(0, 1, 16)   # flags, maxmsg, msgsize: small, under RLIMIT_MSGQUEUE
for i in range(65):
    if c.mq_open(b"/q%d" % i, 0o102, 0o600, attr) < 0:
        sys.exit("mq_open: %d" % ctypes.get_errno())' || return 1
	# shellcheck disable=SC2016
	UNCHANGED='[ "$(nsenter -t "$WL_PID" -i sh -c "mkdir -p /tmp/.mq.$$ && mount -t mqueue none /tmp/.mq.$$ 2>/dev/null; ls /tmp/.mq.$$ | wc -l; umount /tmp/.mq.$$; rmdir /tmp/.mq.$$")" = 65 ]'
}

ipc_shm_locked() {
	py_in_ipcns '
i = c.shmget(0, 4096, 0o1600)
if i < 0 or c.shmctl(i, 11, None) < 0:
    sys.exit("shmget, SHM_LOCK: %d" % ctypes.get_errno())' || return 1
	UNCHANGED='nsenter -t "$WL_PID" -i ipcs -m | grep -q locked'
}

ipc_shm_big() {
	# shellcheck disable=SC2016
	real_start "$CASE_TMP/sleep.out" "$CASE_TMP" sleep unshare -i sh -c 'ipcmk -M 34000000 >/dev/null && exec sleep 1000' || return 1
	UNCHANGED='[ "$(nsenter -t "$WL_PID" -i ipcs -m | grep -c " 34000000 ")" = 1 ]'
}

ipc_many_queues() {
	# shellcheck disable=SC2016
	real_start "$CASE_TMP/sleep.out" "$CASE_TMP" sleep unshare -i sh -c 'i=0; while [ $i -lt 257 ]; do ipcmk -Q >/dev/null || exit 1; i=$((i + 1)); done; exec sleep 1000' || return 1
	UNCHANGED='[ "$(ipcs_in -q)" = 257 ]'
}

# refused_by_fn WORDS FUNCTION
refused_by_fn() {
	local words=$1 ns
	UNCHANGED=true
	"$2" || return 1
	ns=$(readlink "/proc/$WL_PID/ns/ipc")
	expect_refused "$WL_PID" "$CASE_TMP/img" "$words" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	[ "$(readlink "/proc/$WL_PID/ns/ipc")" = "$ns" ] || { REASON="its ipc namespace changed"; return 1; }
	eval "$UNCHANGED" || { REASON="after the refused dump the thing is gone ($UNCHANGED)"; return 1; }
	kill "$WL_PID"
}

# refused_at_dump WORDS WORKLOAD MODE [DUMP OPTION...]
refused_at_dump() {
	local words=$1
	wl_start "$2" "$3" || return 1
	shift 3
	cr_run dump dump "$WL_PID" -D "$CASE_TMP/img" "$@"
	check_refused "$WL_PID" "$CASE_TMP/img" "$words" || return 1
	running_free "$WL_PID" "$WL_EXE" || { REASON="after the refused dump: $(describe_pid "$WL_PID")"; return 1; }
	wl_trigger || return 1
	wl_expect_pass || return 1
	wl_await_exit
}

run_case every_site_listed every_site_listed
for row in "${REFUSALS[@]}"; do
	IFS='|' read -r _ _ how words arg <<<"$row"
	case $how in
	dump)
		read -r wl mode opts <<<"$arg"
		# shellcheck disable=SC2086
		run_case "${wl#w_}_$mode" refused_at_dump "$words" "$wl" "$mode" $opts ;;
	fn) run_case "$arg" refused_by_fn "$words" "$arg" ;;
	esac
done
finish_tests
