#!/usr/bin/perl
# Reads an Open311 answer on stdin exactly as FixMyStreet's client does
# (perllib/Open311.pm, _get_xml_object) and prints what it sees as JSON.
use strict;
use warnings;
use XML::Simple;
use JSON::PP;

local $/;
my $xml = <STDIN>;
my $group_tags = {
    services => 'service',
    attributes => 'attribute',
    values => 'value',
    service_requests => 'request',
    errors => 'error',
    service_request_updates => 'request_update',
    groups => 'group',
};
my $simple = XML::Simple->new(
    ForceArray => [ values %$group_tags ],
    KeyAttr => {},
    GroupTags => $group_tags,
    SuppressEmpty => undef,
);
my $obj = eval { $simple->parse_string($xml) };
print JSON::PP->new->canonical->allow_nonref->encode($obj);
