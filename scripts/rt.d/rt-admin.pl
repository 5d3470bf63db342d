#!/usr/bin/perl
# RT administration that REST2 (RT 5.0) cannot do: users, tokens, queue rights, custom fields. Used by scripts/rt.
#   setup                      the bot user `fairdesk` with rights on the queue General (idempotent)
#   token USER                 prints a new REST2 token for USER ("1-14-abc...")
#   queue NAME [--no-rights]   a queue; unless --no-rights, the bot's rights and mail's (Everyone) rights on it
#   customfield QUEUE NAME     a FreeformSingle ticket custom field NAME (created once), applied to QUEUE
use strict;
use warnings;
use lib '/usr/local/share/request-tracker5/lib', '/usr/share/request-tracker5/lib';
use RT;

RT::LoadConfig();
# Only errors on stderr: RT's info lines and its warning about the HTML converter are noise for these commands.
RT->Config->Set(LogToSTDERR => 'error');
RT::Init();

my @BOT_RIGHTS = qw(SeeQueue CreateTicket ShowTicket ShowTicketComments ReplyToTicket CommentOnTicket
  ModifyTicket SeeCustomField ModifyCustomField Watch);
my @MAIL_RIGHTS = qw(CreateTicket ReplyToTicket CommentOnTicket);

sub bot {
    my $user = RT::User->new(RT->SystemUser);
    $user->Load('fairdesk');
    return $user if $user->id;
    my ($id, $msg) = $user->Create(
        Name => 'fairdesk', EmailAddress => 'fairdesk-bot@fairdesk.test', RealName => 'fairdesk bot', Privileged => 1);
    die "bot user: $msg\n" unless $id;
    return $user;
}

sub load_queue {
    my $queue = RT::Queue->new(RT->SystemUser);
    $queue->Load($_[0]);
    die "no queue $_[0]\n" unless $queue->id;
    return $queue;
}

sub grant {
    my ($principal, $object, @rights) = @_;
    for my $right (@rights) {
        my ($ok, $msg) = $principal->GrantRight(Right => $right, Object => $object);
        die "grant $right: $msg\n" unless $ok || $msg =~ /already/i;
    }
}

sub queue {
    my ($name, $rights) = @_;
    my $queue = RT::Queue->new(RT->SystemUser);
    $queue->Load($name);
    unless ($queue->id) {
        my ($id, $msg) = $queue->Create(Name => $name, Description => 'fairdesk tests');
        die "queue $name: $msg\n" unless $id;
    }
    if ($rights) {
        grant(bot()->PrincipalObj, $queue, @BOT_RIGHTS);
        my $everyone = RT::Group->new(RT->SystemUser);
        $everyone->LoadSystemInternalGroup('Everyone');
        grant($everyone->PrincipalObj, $queue, @MAIL_RIGHTS);
    }
    return $queue;
}

my $cmd = shift // '';
if ($cmd eq 'setup') {
    bot();
    queue('General', 1);
}
elsif ($cmd eq 'token') {
    my $user = RT::User->new(RT->SystemUser);
    $user->Load(shift // 'fairdesk');
    die "no such user\n" unless $user->id;
    # As the system user: a token owned by someone else needs AdminUsers, which the system user has.
    my $token = RT::AuthToken->new(RT->SystemUser);
    my ($id, $msg, $authstring) = $token->Create(Owner => $user->id, Description => 'fairdesk tests');
    die "token: $msg\n" unless $id;
    print "$authstring\n";
}
elsif ($cmd eq 'queue') {
    my ($name, $flag) = @ARGV;
    die "queue: a name is needed\n" unless defined $name;
    print queue($name, ($flag // '') ne '--no-rights')->id, "\n";
}
elsif ($cmd eq 'customfield') {
    my ($queue_name, $name) = @ARGV;
    my $queue = load_queue($queue_name);
    my $cf = RT::CustomField->new(RT->SystemUser);
    $cf->LoadByName(Name => $name, LookupType => RT::Ticket->CustomFieldLookupType, IncludeDisabled => 0);
    unless ($cf->id) {
        my ($id, $msg) = $cf->Create(Name => $name, Type => 'FreeformSingle', LookupType => RT::Ticket->CustomFieldLookupType);
        die "custom field $name: $msg\n" unless $id;
    }
    unless ($cf->IsAdded($queue->id)) {
        my ($ok, $msg) = $cf->AddToObject($queue);
        die "apply $name to $queue_name: $msg\n" unless $ok;
    }
    print $cf->id, "\n";
}
else {
    die "usage: rt-admin.pl setup | token USER | queue NAME [--no-rights] | customfield QUEUE NAME\n";
}
