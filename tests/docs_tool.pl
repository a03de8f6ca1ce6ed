#!/usr/bin/perl
# tests/docs_tool.pl - the parsing half of tests/docs.sh (which runs it).
#
#   docs_tool.pl api API_MD HEADER...
#       Checks that API_MD documents every public name the headers declare:
#       each FMNN_API function and each type (typedef, enum or struct tag)
#       needs a heading that names it in backticks, each function also a
#       ```c block with its prototype, and each macro and enum constant must
#       appear in inline code.  A heading that names an fmnn_ function or
#       type the headers do not declare is an error too (stale docs).
#
#   docs_tool.pl extract OUTDIR MARKDOWN...
#       Writes every ```c block of the files into OUTDIR as a translation
#       unit and prints one line per unit: "KIND FILE.c SOURCE:LINE".  The
#       kind comes from the block:
#         program   it defines main(): compiled and linked against libfmnn;
#         fragment  its first line is /* fragment */: statements, wrapped in
#                   a function body that declares the usual variables
#                   (err, model, train, test, x, y, probs, history, loss,
#                   accuracy) and a prototype of fail(const char *, int);
#         recipe    its first line is /* in PATH */ or /* in PATH: CONTEXT */:
#                   part of a recipe (docs/internals.md).  All such blocks
#                   of one file form ONE unit, in document order, compiled
#                   against the private headers (-Ilib -Itests).  CONTEXT
#                   says where the lines go: "enum NAME" (enumerators),
#                   "LAYER_TYPES" (lines of lib/layers/registry.c's list) or
#                   "gradients_suite()" (statements adding Check tests;
#                   then the unit also gets a main() that runs them);
#         decls     anything else: top-level declarations, compiled after
#                   #include <fmnn.h>.
#       Each block is preceded by #line, so compiler errors point into the
#       markdown file.
#
#   docs_tool.pl links MARKDOWN...
#       Checks that relative links point to existing files and that
#       #anchors match a heading (GitHub's anchor rules).
use strict;
use warnings;

sub slurp {
    my ($path) = @_;
    open my $f, '<', $path or die "docs_tool.pl: $path: $!\n";
    local $/;
    return scalar <$f>;
}

# Splits markdown into text outside fences and the ```c blocks inside,
# keeping line numbers: returns (text, [ [first_line, code, lang], ... ]).
sub parse_markdown {
    my ($path) = @_;
    my @lines = split /\n/, slurp($path), -1;
    my ($text, @blocks, $fence, $lang, $start, $code) = ('');
    for my $i (0 .. $#lines) {
        my $line = $lines[$i];
        if (!defined $fence) {
            if ($line =~ /^(\s*)(```+|~~~+)\s*([\w+-]*)/) {
                ($fence, $lang, $start, $code) = ($2, $3, $i + 2, '');
                $text .= "\n";
            } else {
                $text .= "$line\n";
            }
        } elsif ($line =~ /^\s*\Q$fence\E\s*$/) {
            push @blocks, [ $start, $code, $lang ];
            undef $fence;
            $text .= "\n";
        } else {
            $code .= "$line\n";
            $text .= "\n";
        }
    }
    die "docs_tool.pl: $path: a ``` fence opened at line " . ($start - 1) . " is never closed\n"
        if defined $fence;
    return ($text, \@blocks);
}

# ---- api ---------------------------------------------------------------

sub api {
    my ($md, @headers) = @_;
    my $src = join '', map { slurp($_) } @headers;
    $src =~ s{/\*.*?\*/}{ }gs;
    $src =~ s{//[^\n]*}{}g;

    my (%fn, %macro, %type, %const);
    $fn{$1} = 1 while $src =~ /\bFMNN_API\b[^;{(]*?\b(fmnn_\w+)\s*\(/g;
    $macro{$1} = 1 while $src =~ /^[ \t]*#[ \t]*define[ \t]+(FMNN_\w+)/mg;
    delete $macro{$_} for grep { /_H$/ } keys %macro;   # include guards
    while ($src =~ /\b(fmnn_\w+|FMNN_\w+)\b/g) {
        my $name = $1;
        next if $fn{$name} || $macro{$name} || $name =~ /^FMNN(_\w+)?_H$/;
        if ($name =~ /^fmnn_/) { $type{$name} = 1 } else { $const{$name} = 1 }
    }
    return fail_api("found no FMNN_API function in @headers") unless %fn;

    my ($text, $blocks) = parse_markdown($md);
    my $code = join '', map { $_->[1] } grep { $_->[2] eq 'c' } @$blocks;
    my (%in_heading, %in_code_span);
    for my $line (split /\n/, $text) {
        next unless $line =~ /^#{1,6}\s/;
        while ($line =~ /`([^`]*)`/g) {
            $in_heading{$_} = 1 for $1 =~ /\b(\w+)\b/g;
        }
    }
    while ($text =~ /`([^`]+)`/g) {
        $in_code_span{$_} = 1 for $1 =~ /\b(\w+)\b/g;
    }

    my @missing;
    for my $name (sort keys %fn) {
        push @missing, "function $name: no heading names it" unless $in_heading{$name};
        push @missing, "function $name: no ```c block shows its prototype"
            unless $code =~ /\b\Q$name\E\s*\(/;
    }
    for my $name (sort keys %type) {
        push @missing, "type $name: no heading names it" unless $in_heading{$name};
    }
    for my $name (sort(keys %macro), sort(keys %const)) {
        my $kind = $macro{$name} ? 'macro' : 'constant';
        push @missing, "$kind $name: not mentioned in `code`" unless $in_code_span{$name};
    }
    for my $name (sort keys %in_heading) {
        next unless $name =~ /^(fmnn_|FMNN_)/;
        push @missing, "$name has a heading but is not declared in include/ (stale?)"
            unless $fn{$name} || $type{$name} || $macro{$name} || $const{$name};
    }
    if (@missing) {
        print STDERR "docs: FAIL: $md: $_\n" for @missing;
        return 1;
    }
    printf "docs: %s documents all %d functions, %d types, %d macros and %d constants\n",
        $md, scalar(keys %fn), scalar(keys %type), scalar(keys %macro), scalar(keys %const);
    return 0;
}

sub fail_api {
    print STDERR "docs: FAIL: $_[0]\n";
    return 1;
}

# ---- extract -------------------------------------------------------------

my $FRAGMENT_PRELUDE = <<'C';
#include <fmnn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fail(const char *what, int err);
int docs_fragment(void);
int docs_fragment(void)
{
    int err = 0;
    fmnn_model *model = NULL;
    fmnn_dataset *train = NULL, *test = NULL;
    fmnn_tensor *x = NULL, *y = NULL, *probs = NULL;
    fmnn_history *history = NULL;
    float loss = 0.0f, accuracy = 0.0f;
    {
C

my $DECLS_PRELUDE = <<'C';
#include <fmnn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
C

my $RECIPE_PRELUDE = <<'C';
#include "layer_impl.h"
#include <check.h>
#include "gradcheck.h"
C

# Where a recipe block's lines go, by its CONTEXT: [ before, after ].
my %RECIPE_CONTEXT = (
    # A line of the registry's list of layer types, which declares its ops
    # here (the list's lines end in a backslash: the blank line ends it).
    'LAYER_TYPES' => [
        "#define X(code, name) extern const struct fmnn_layer_ops fmnn__##name##_ops;\n",
        "\n\n#undef X\n" ],
    'gradients_suite()' => [
        "static void docs_add_tests(TCase *tc)\n{\n",
        "}\n" ],
);

my $RECIPE_MAIN = <<'C';

/* Runs the recipe's Check tests (added by the gradients_suite() part). */
int main(void)
{
    Suite *s = suite_create("docs recipe");
    TCase *tc = tcase_create("recipe");
    docs_add_tests(tc);
    suite_add_tcase(s, tc);
    SRunner *runner = srunner_create(s);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? 1 : 0;
}
C

sub write_file {
    my ($path, $content) = @_;
    open my $f, '>', $path or die "docs_tool.pl: $path: $!\n";
    print $f $content;
    close $f or die "docs_tool.pl: $path: $!\n";
}

sub extract {
    my ($out, @files) = @_;
    my $n = 0;
    for my $md (@files) {
        my (undef, $blocks) = parse_markdown($md);
        my ($recipe, $recipe_line, $has_suite, $enums) = ('', 0, 0, 0);
        for my $b (@$blocks) {
            my ($line, $code, $lang) = @$b;
            next unless $lang eq 'c';
            my $at = qq{#line $line "$md"\n};
            my ($first) = $code =~ /^\s*(.*)/;
            if ($first =~ m{^/\*\s*in\s+(\S+?)(?::\s*(.*?))?\s*\*/}) {
                my ($path, $context) = ($1, $2 // '');
                $recipe_line ||= $line;
                if ($context eq '') {
                    $recipe .= $at . $code;
                } elsif ($context =~ /^enum\s+(\w+)$/) {
                    $enums++;
                    $recipe .= "enum docs_$1_$enums {\n$at$code};\n";
                } elsif (my $wrap = $RECIPE_CONTEXT{$context}) {
                    $has_suite ||= $context eq 'gradients_suite()';
                    $recipe .= $wrap->[0] . $at . $code . $wrap->[1];
                } else {
                    print STDERR "docs: FAIL: $md:$line: unknown recipe context '$context' "
                      . "(known: none, enum NAME, " . join(', ', sort keys %RECIPE_CONTEXT) . ")\n";
                    return 1;
                }
                next;
            }
            $n++;
            my $name = sprintf 'block%03d.c', $n;
            my ($kind, $unit);
            if ($code =~ /\bint\s+main\s*\(/) {
                ($kind, $unit) = ('program', $at . $code);
            } elsif ($first =~ m{^/\*\s*fragment\s*\*/}) {
                ($kind, $unit) = ('fragment', $FRAGMENT_PRELUDE . $at . $code
                    . "#line 1 \"(fragment wrapper)\"\n    }\n    return err;\n}\n");
            } else {
                ($kind, $unit) = ('decls', $DECLS_PRELUDE . $at . $code);
            }
            write_file("$out/$name", $unit);
            print "$kind $name $md:$line\n";
        }
        if ($recipe ne '') {
            $n++;
            my $name = sprintf 'recipe%03d.c', $n;
            write_file("$out/$name", $RECIPE_PRELUDE . $recipe . ($has_suite ? $RECIPE_MAIN : ''));
            print(($has_suite ? 'recipe-run' : 'recipe') . " $name $md:$recipe_line\n");
        }
    }
    return 0;
}

# ---- links ---------------------------------------------------------------

# GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'.
sub anchors {
    my ($md) = @_;
    my ($text) = parse_markdown($md);
    my %seen;
    for my $line (split /\n/, $text) {
        next unless $line =~ /^#{1,6}\s+(.*?)\s*#*\s*$/;
        (my $a = lc $1) =~ s/[^\w\- ]//g;
        $a =~ s/ /-/g;
        my $id = $a;
        my $k = 0;
        $id = "$a-" . ++$k while $seen{$id};
        $seen{$id} = 1;
    }
    return \%seen;
}

sub links {
    my $bad = 0;
    for my $md (@_) {
        my ($text) = parse_markdown($md);
        $text =~ s/`[^`]*`//g;   # no links inside code spans
        (my $dir = $md) =~ s{[^/]*$}{};
        while ($text =~ /\[[^\]]*\]\(([^)\s]+)\)/g) {
            my $target = $1;
            next if $target =~ /^[a-z]+:/i;   # http:, https:, mailto:
            my ($file, $anchor) = $target =~ /^([^#]*)(?:#(.*))?$/;
            my $path = $file eq '' ? $md : "$dir$file";
            if (!-e $path) {
                print STDERR "docs: FAIL: $md: link to $target: no such file $path\n";
                $bad = 1;
            } elsif (defined $anchor && $path =~ /\.md$/ && !anchors($path)->{$anchor}) {
                print STDERR "docs: FAIL: $md: link to $target: no heading with that anchor\n";
                $bad = 1;
            }
        }
    }
    return $bad;
}

# ---- main ----------------------------------------------------------------

my $cmd = shift @ARGV // '';
if ($cmd eq 'api') { exit api(@ARGV) }
if ($cmd eq 'extract') { exit extract(@ARGV) }
if ($cmd eq 'links') { exit links(@ARGV) }
die "usage: docs_tool.pl api|extract|links ...\n";
