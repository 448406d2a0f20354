#!/usr/bin/perl
# The Perl half of example/perl_share.cpp: an ordinary IPC::ShareLite
# program. It reads the greeting the C++ program stored, answers, and then
# increments a counter shared with the C++ program under LOCK_EX, as many
# times as it is told, while the C++ program does the same.
#
#   perl perl_share.pl KEY ROUNDS
use strict;
use warnings;
use IPC::ShareLite qw(:lock);

my ($key, $rounds) = @ARGV;
my $greeting = IPC::ShareLite->new(-key => $key, -create => 'no', -destroy => 'no')
    or die "perl: no share at key $key: $!\n";
my $counter = IPC::ShareLite->new(-key => $key + 100, -create => 'no', -destroy => 'no')
    or die "perl: no counter share at key ", $key + 100, ": $!\n";

print STDERR "perl: read \"", $greeting->fetch, "\" (version ", $greeting->version, ")\n";
$greeting->store("hello from perl $$");

# Tell the C++ side we are ready (on stdout, a pipe to it), wait for its
# go (on stdin), then count together.
$| = 1;
print "ready\n";
my $go = <STDIN>;
for (1 .. $rounds) {
    $counter->lock(LOCK_EX);
    $counter->store($counter->fetch + 1);
    $counter->unlock;
}
print STDERR "perl: counted $rounds\n";
