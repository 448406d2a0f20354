/*
 * rwlock.pml: shmkit's crash-recoverable reader/writer lock, with the attach
 * table it takes its liveness from.
 *
 * Modelled code (one Promela step per shared-memory access of the C++):
 *   include/shmkit/sync/rwlock.hpp      lock, lock_shared, unlock, unlock_shared,
 *                                       enter_reader, leave_reader, no_readers
 *   libs/sync/src/rwlock.cpp            lock_slow, drain_readers, lock_shared_slow,
 *                                       try_lock*, try_lock_*_recovering
 *   libs/sync/src/token_word.cpp        acquire_token_word, take_over, take_over_if_dead
 *   include/shmkit/sync/detail/token_word.hpp  release_token_word
 *   libs/region/src/attach_table.cpp    attach, try_take, wipe, reclaim_if_dead,
 *                                       token_alive, entry_alive
 *
 * NW worker processes each run OPS lock operations; any of them may die
 * before any shared-memory step (at most MAXDEATHS of them). Dying stops the
 * process for good, and the liveness probe sees it dead from then on (its
 * OFD lock goes with it). One more process, `late`, never dies: once a
 * worker has died it attaches (claiming a dead worker's entry, as a
 * restarted worker would), takes the lock once while the survivors run, and
 * once every worker has finished or died takes the write lock again and
 * checks that nothing leaked.
 *
 * Properties (see README.md):
 *   - mutual exclusion: assertions where a live process acquires;
 *   - no live holder is ever taken over: assertion in unlock;
 *   - reader counts never go below zero: assertion before each decrement;
 *   - nothing leaks after recovery: assertions in the late process;
 *   - a dead writer's half-written data is always reported (recovered());
 *   - deadlock freedom: no invalid end state (every live process completes
 *     all its operations);
 *   - with LIVENESS, the LTL property `finish`: every execution reaches the
 *     state where all workers have finished or died and the late process
 *     has finished (pan -a: no livelock either).
 *
 * Configuration (spin -D...):
 *   NW, OPS, MAXDEATHS  workers, operations per worker, deaths at most;
 *   VARIANTS   workers also use the timed, try and try_*_recovering entry
 *              points, not only lock() and lock_shared();
 *   GEN_BITS   width of the generation carried by a token (default 3: no
 *              token wraps inside the model);
 *   ALLOW_WRAP lets generations wrap (with GEN_BITS=1: README.md,
 *              "Generation wrap").
 */

#ifndef NW
#define NW 3
#endif
#ifndef MAXDEATHS
#define MAXDEATHS 2
#endif
#ifndef OPS
#define OPS 1
#endif
#ifndef GEN_BITS
#define GEN_BITS 3
#endif

#define NP_ (NW + 1)   /* processes: the workers and `late` */
#define NE (NW + 1)    /* attach entries: one per worker, one spare */
#define LATE NW        /* the late process's number */

/* ---- Shared memory ---------------------------------------------------- */

/* attach_entry (attach_table.hpp): owner word (0 free, p + 1 for process p;
 * a process's owner word never repeats, as PID + start time do not),
 * generation (full counter, never wraps), readers[k] of the one rwlock. */
byte owner[NE];
byte gen[NE];
byte readers[NE];

/* rwlock_state (lock_state.hpp). */
byte writer;  /* a token (see TOKEN) or 0 */
bit dirty;

/* Liveness as the probe sees it: the OFD lock held, or the PID running. */
bool alive[NP_];
byte ndead;

/* ---- Tokens (attach_table.hpp: make_token, token_index, ...) -------------
 * Index + 1 in the low 3 bits, the generation's low GEN_BITS bits above. */
#define GMASK ((1 << GEN_BITS) - 1)
/* The checked configurations give tokens enough generation bits that they
 * never wrap inside the model, as 18 bits do not in practice (see
 * README.md: "Generation wrap"); ALLOW_WRAP lets them wrap. */
#ifdef ALLOW_WRAP
#define NO_WRAP(g) skip
#else
#define NO_WRAP(g) assert((g) <= GMASK)
#endif
#define TOKEN(i, g) ((((g) & GMASK) << 3) | ((i) + 1))
#define TIDX(t) (((t) & 7) - 1)
#define TGEN(t) ((t) >> 3)

/* attachment::owner_alive: a claimed entry whose claimer still runs. */
#define OWNER_ALIVE(o) ((o) != 0 && alive[(o) - 1])
/* attachment::entry_alive. */
#define ENTRY_ALIVE(i) OWNER_ALIVE(owner[i])
/* attachment::token_alive: the entry still carries the token's generation
 * and its claimer runs. */
#define TOKEN_ALIVE(t) ((t) != 0 && (gen[TIDX(t)] & GMASK) == TGEN(t) && ENTRY_ALIVE(TIDX(t)))

/* ---- Ghost state (not in the C++; only for the assertions) -------------- */

#define FREE 0
#define SH 1      /* holds the lock shared */
#define EX 2      /* holds it exclusively, inside the critical section */
#define EX_OUT 3  /* exclusive, inside unlock(): the data is whole again */

byte hold[NP_];
byte nex;        /* live processes holding exclusively */
byte nsh;        /* live processes holding shared */
bit torn;        /* a writer died inside its critical section, and no
                    writer has unlocked since: the data may be half-written */
byte ndone;      /* workers that completed all their operations */
bit late_done;   /* the late process completed its checks */

/* ---- Death ------------------------------------------------------------- */

inline die()
{
    ndead++;
    alive[self] = false;
    /* A dead process's locals are dead too: zero them, so that states
     * differing only in them are one. */
    me = 0; my_entry = 0; seen = 0; watched = 0; rseen = 0; i = 0; k = 0;
    outcome = 0; ok = 0; r = 0; rec = 0; have = 0; rtmp = 0;
    if
    :: hold[self] == EX -> torn = 1; nex--
    :: hold[self] == EX_OUT -> nex--
    :: hold[self] == SH -> nsh--
    :: else -> skip
    fi
}

#define CAN_DIE (self != LATE && ndead < MAXDEATHS)
/* A branch of every choice point: the process dies here. */
#define DIE_OPT :: atomic { CAN_DIE -> die(); goto dead }
/* One shared-memory step that writes, before which the process may die.
 * The leading (1) keeps a statement that starts with an if from having its
 * options merged with DIE_OPT (where an else would then never be taken). */
#define S(stmt) if DIE_OPT :: atomic { (1); stmt } fi
/* One step that only reads shared memory. A death just before it leaves
 * the same shared state as a death just after it, before the next write
 * (S) or wait (DIE_OPT), so it needs no death branch of its own. */
#define L(stmt) atomic { (1); stmt }

/* ---- Ghost bookkeeping of acquisitions and releases -------------------- */

inline got_exclusive()
{
    assert(nex == 0 && nsh == 0);   /* mutual exclusion */
    nex++;
    hold[self] = EX
}

inline got_shared()
{
    assert(nex == 0);               /* no live writer beside a reader */
    nsh++;
    hold[self] = SH
}

/* note_held(mode, recovered || dirty()): the dirty() load. A writer that
 * died in its critical section must be reported to every acquirer until a
 * writer unlocks. */
inline note_held()
{
    L(rec = rec || dirty; assert(!torn || rec); rec = 0)
}

/* ---- attach_table.cpp ---------------------------------------------------- */

/* attachment::try_take(i, seen) followed by wipe(i): probe the owner seen,
 * CAS the owner word from it to ours, zero the reader counts, bump the
 * generation (skipping one whose token is still in the writer word:
 * token_in_lock_word). The OFD lock taken before the CAS only keeps two
 * claimers apart earlier; the CAS settles it, so it is folded into the CAS.
 * r: whether the entry is ours now. */
inline take_and_wipe(i, seen, r)
{
    L(r = !OWNER_ALIVE(seen));                                   /* owner_alive */
    if
    :: r ->
        S(if :: owner[i] == seen -> owner[i] = self + 1 :: else -> r = 0 fi);   /* CAS owner */
        if
        :: r ->
            S(readers[i] = 0);                                   /* wipe: readers */
            S(gen[i]++;                                          /* wipe: generation, */
              do                                                 /* token_in_lock_word */
              :: writer == TOKEN(i, gen[i]) -> gen[i]++
              :: else -> break
              od;
              NO_WRAP(gen[i]))
        :: else -> skip
        fi
    :: else -> skip
    fi
}

/* attachment::reclaim_if_dead(i). r: reclaimed. */
inline reclaim_if_dead(i, r)
{
    L(rseen = owner[i]);
    if
    :: rseen != 0 && i == my_entry -> r = 0                      /* our own entry */
    :: else ->
        take_and_wipe(i, rseen, r);
        if
        :: r -> S(owner[i] = 0)                                  /* free the entry */
        :: else -> skip
        fi
    fi;
    rseen = 0
}

/* attachment::attach(): claim the first free or dead entry. */
inline attach()
{
    i = 0;
    do
    :: i < NE ->
        L(rseen = owner[i]);
        take_and_wipe(i, rseen, r);
        if
        :: r -> break
        :: else -> i++
        fi
    :: else -> assert(false)                                     /* attach_table_full */
    od;
    atomic { my_entry = i; me = TOKEN(i, gen[i]); i = 0; r = 0; rseen = 0 }
}

/* ---- token_word.cpp -------------------------------------------------------- */

#define ACQUIRED 1
#define RECOVERED 2
#define TIMED_OUT 3

/* take_over(w, dead, want): dirty first, then one CAS from the dead token. */
inline take_over(held_by, want, r)
{
    S(dirty = 1);
    S(if :: writer == held_by -> writer = want; r = 1 :: else -> r = 0 fi)
}

/* acquire_token_word(w, att, want, deadline): want = our token (writer) or
 * 0 (a reader waiting for the word to be free). The spin phase is the same
 * CAS as the loop's and needs no steps of its own. The futex sleep is
 * bounded (liveness_poll_interval), so it is modelled as waiting until the
 * word changes or its holder is dead (the probe after one interval finds
 * it dead); a live holder's word that stays unchanged would only make the
 * loop poll again. A timed call may also reach its deadline at any wait. */
inline acquire_token_word(want, timed, outcome)
{
    outcome = 0;
    do
    :: L(seen = writer);                                         /* w.word.load */
        if
        :: seen == 0 && want != 0 ->                             /* try_take_free: CAS */
            S(if :: writer == 0 -> writer = want; outcome = ACQUIRED :: else -> skip fi)
        :: seen == 0 && want == 0 ->                             /* try_take_free: load */
            L(if :: writer == 0 -> outcome = ACQUIRED :: else -> skip fi)
        :: seen != 0 ->
            if
            :: writer != seen -> skip                            /* woken: look again */
            :: !TOKEN_ALIVE(seen) ->                             /* token_alive after an interval */
                take_over(seen, want, r);
                if :: r -> outcome = RECOVERED :: else -> skip fi;
                r = 0
            :: timed -> outcome = TIMED_OUT                      /* deadline */
            DIE_OPT
            fi
        fi;
        seen = 0;
        if :: outcome != 0 -> break :: else -> skip fi
    od
}

/* take_over_if_dead(w, att, want): one probe, no waiting. r: taken over. */
inline take_over_if_dead(want, r)
{
    L(seen = writer);
    L(r = seen != 0 && !TOKEN_ALIVE(seen));
    if
    :: r -> take_over(seen, want, r)
    :: else -> skip
    fi;
    seen = 0
}

/* release_token_word: a store of 0 (and a futex wake, not modelled). */
inline release_writer()
{
    S(writer = 0)
}

/* ---- rwlock.hpp / rwlock.cpp: the writer side ------------------------------ */

/* no_readers(): one load per entry. ok: all counts were 0. */
inline no_readers(ok)
{
    ok = 1;
    i = 0;
    do
    :: i < NE -> L(if :: readers[i] != 0 -> ok = 0 :: else -> skip fi); i++
    :: else -> break
    od;
    i = 0
}

/* drain_readers(deadline, recovered): wait for each entry's count to reach
 * 0; a count that does not move is polled, and its entry reclaimed if its
 * process is dead. ok: drained (0: the deadline passed). */
inline drain_readers(timed, ok)
{
    ok = 1;
    i = 0;
    do
    :: i < NE ->
        L(watched = readers[i]);
        do
        :: watched == 0 -> break
        :: else ->
            if
            :: atomic { readers[i] != watched -> watched = readers[i] }    /* futex wake, reload */
            :: !ENTRY_ALIVE(i) ->                                          /* poll after an interval */
                reclaim_if_dead(i, r);
                if :: r -> rec = 1 :: else -> skip fi;
                r = 0;
                L(watched = readers[i])
            :: timed -> ok = 0; break                                      /* deadline */
            DIE_OPT
            fi
        od;
        watched = 0;
        if :: ok -> i++ :: else -> break fi
    :: else -> break
    od;
    i = 0
}

/* lock_slow(have_writer_word, deadline). ok: acquired. */
inline lock_slow(have, timed, ok)
{
    ok = 1;
    if
    :: !have ->
        acquire_token_word(me, timed, outcome);
        if
        :: outcome == TIMED_OUT -> ok = 0
        :: outcome == RECOVERED -> rec = 1
        :: else -> skip
        fi;
        outcome = 0
    :: else -> skip
    fi;
    if
    :: ok ->
        drain_readers(timed, ok);
        if
        :: ok -> atomic { got_exclusive() }
        :: else -> release_writer()
        fi
    :: else -> skip
    fi
}

/* lock(): CAS 0 -> me, then no_readers(); else lock_slow. */
inline lock_exclusive()
{
    S(if :: writer == 0 -> writer = me; have = 1 :: else -> have = 0 fi);
    if
    :: have ->
        no_readers(ok);
        if
        :: ok -> atomic { got_exclusive() }
        :: else -> lock_slow(have, 0, ok)
        fi
    :: else -> lock_slow(have, 0, ok)
    fi;
    have = 0;
    note_held()
}

/* try_lock_for(d): lock_slow(false, &deadline). ok: acquired. */
inline try_lock_for(ok)
{
    lock_slow(0, 1, ok);
    if :: ok -> note_held() :: else -> rec = 0 fi
}

/* try_lock(): CAS, then no_readers(); back off if any reader is in. */
inline try_lock(ok)
{
    S(if :: writer == 0 -> writer = me; ok = 1 :: else -> ok = 0 fi);
    if
    :: ok ->
        no_readers(ok);
        if
        :: ok -> atomic { got_exclusive() }; note_held()
        :: else -> release_writer()
        fi
    :: else -> skip
    fi
}

/* try_lock_recovering(): the word free or held by a dead token, then each
 * held reader count reclaimed if dead, else back off. */
inline try_lock_recovering(ok)
{
    S(if :: writer == 0 -> writer = me; ok = 1 :: else -> ok = 0 fi);
    if
    :: !ok ->
        take_over_if_dead(me, ok);
        if :: ok -> rec = 1 :: else -> skip fi
    :: else -> skip
    fi;
    if
    :: ok ->
        i = 0;
        do
        :: i < NE ->
            L(watched = readers[i]);
            if
            :: watched != 0 ->
                reclaim_if_dead(i, r);
                if
                :: r -> rec = 1
                :: else -> L(if :: readers[i] != 0 -> ok = 0 :: else -> skip fi)
                fi;
                r = 0
            :: else -> skip
            fi;
            watched = 0;
            if :: ok -> i++ :: else -> break fi
        :: else -> break
        od;
        i = 0;
        if
        :: ok -> atomic { got_exclusive() }; note_held()
        :: else -> release_writer(); rec = 0
        fi
    :: else -> rec = 0
    fi
}

/* unlock(): clear dirty (this writer repaired the data), then the word. */
inline unlock_exclusive()
{
    /* From here the data is whole (the writer repaired it): a death no
     * longer leaves it torn. The writer word must still be ours. */
    S(hold[self] = EX_OUT; torn = 0; assert(writer == me); rtmp = dirty);
    if
    :: rtmp -> S(dirty = 0)
    :: else -> skip
    fi;
    rtmp = 0;
    S(writer = 0; nex--; hold[self] = FREE)                     /* release_token_word */
}

/* ---- rwlock.hpp / rwlock.cpp: the reader side ------------------------------ */

/* enter_reader(): count ourselves, then look at the writer word (Dekker
 * with the writer's CAS + scan); back off if it is held. ok: entered. */
inline enter_reader(ok)
{
    S(readers[my_entry]++);
    L(if :: writer == 0 -> ok = 1; got_shared() :: else -> ok = 0 fi);
    if
    :: !ok -> S(assert(readers[my_entry] > 0); readers[my_entry]--)
    :: else -> skip
    fi
}

/* lock_shared_slow(deadline): wait for the word to be free (recovering a
 * dead writer), then enter; again if a writer came first. ok: entered. */
inline lock_shared_slow(timed, ok)
{
    do
    :: acquire_token_word(0, timed, outcome);
        if
        :: outcome == TIMED_OUT -> ok = 0; outcome = 0; break
        :: outcome == RECOVERED -> rec = 1
        :: else -> skip
        fi;
        outcome = 0;
        enter_reader(ok);
        if :: ok -> break :: else -> skip fi
    od
}

/* lock_shared() (timed = 0) and try_lock_shared_for() (timed = 1). */
inline lock_shared(timed, ok)
{
    enter_reader(ok);
    if
    :: !ok -> lock_shared_slow(timed, ok)
    :: else -> skip
    fi;
    if :: ok -> note_held() :: else -> rec = 0 fi
}

/* try_lock_shared(): enter_reader() once. */
inline try_lock_shared(ok)
{
    enter_reader(ok);
    if :: ok -> note_held() :: else -> skip fi
}

/* try_lock_shared_recovering(): enter, or free a dead writer's word and
 * enter once more. */
inline try_lock_shared_recovering(ok)
{
    enter_reader(ok);
    if
    :: !ok ->
        take_over_if_dead(0, ok);
        if
        :: ok -> rec = 1; enter_reader(ok)
        :: else -> skip
        fi
    :: else -> skip
    fi;
    if :: ok -> note_held() :: else -> rec = 0 fi
}

/* unlock_shared() -> leave_reader(). */
inline unlock_shared()
{
    S(assert(readers[my_entry] > 0); readers[my_entry]--; nsh--; hold[self] = FREE)
}

/* ---- Processes ------------------------------------------------------------- */

/* One operation: take the lock in some way; if held, release it. */
inline one_operation()
{
    if
    :: lock_exclusive(); unlock_exclusive()
    :: lock_shared(0, ok); unlock_shared()
#ifdef VARIANTS
    :: try_lock_for(ok); if :: ok -> unlock_exclusive() :: else -> skip fi
    :: lock_shared(1, ok); if :: ok -> unlock_shared() :: else -> skip fi
    :: try_lock(ok); if :: ok -> unlock_exclusive() :: else -> skip fi
    :: try_lock_shared(ok); if :: ok -> unlock_shared() :: else -> skip fi
    :: try_lock_recovering(ok); if :: ok -> unlock_exclusive() :: else -> skip fi
    :: try_lock_shared_recovering(ok); if :: ok -> unlock_shared() :: else -> skip fi
#endif
    fi;
    ok = 0
}

#define LOCALS \
    byte me, my_entry, seen, watched, rseen, i, k, outcome; \
    bit ok, r, rec, have, rtmp

/* Attached already (by init): entry `self`, claimed once (generation 1). */
proctype worker(byte self)
{
    LOCALS;
    atomic { my_entry = self; me = TOKEN(self, 1) };
    do
    :: k < OPS -> one_operation(); k++
    :: else -> break
    od;
    /* It may still die after its last operation: its attach entry is
     * then a dead process's. */
    if DIE_OPT :: skip fi;
    ndone++;
dead:
    skip
}

/* A process that attaches after a death, locks beside the survivors, and
 * checks the end state once they are all gone. It never dies. */
proctype late(byte self)
{
    LOCALS;
    ndead > 0 || ndone == NW;
    attach();
    one_operation();
    ndone + ndead == NW;
    lock_exclusive();
    i = 0;
    do
    :: i < NE -> assert(readers[i] == 0); i++                  /* no leaked read count */
    :: else -> break
    od;
    unlock_exclusive();
    assert(writer == 0 && !torn && nex == 0 && nsh == 0);
    late_done = 1;
dead:
    skip
}

#ifdef LIVENESS
ltl finish { <> (late_done && ndone + ndead == NW) }
#endif

init
{
    byte p;
    atomic {
        do
        :: p < NW -> owner[p] = p + 1; gen[p] = 1; alive[p] = true; run worker(p); p++
        :: else -> break
        od;
        alive[LATE] = true;
        run late(LATE)
    }
}
