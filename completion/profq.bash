# SPDX-License-Identifier: MIT
# bash completion for profq(1). Commands, options and the values an option takes come from the
# --help of the profq being completed, so they follow the installed version; pids from its ps.

# The commands: the first word of the lines under "Commands".
_profq_commands()
{
	"$1" --help 2>/dev/null | sed -n '/^Commands/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p'
}

# The usage lines of a command's --help (of profq's own without a command).
_profq_usage()
{
	"$1" ${2:+"$2"} --help 2>/dev/null | sed -n '/^Usage:/,/^$/p'
}

# A command's options: --[no-]inline gives --inline and --no-inline.
_profq_options()
{
	_profq_usage "$1" "$2" | grep -oE -- '--\[no-\][a-z-]+|--?[a-zA-Z][a-zA-Z-]*' |
		sed -E 's/^--\[no-\](.*)$/--\1 --no-\1/' | tr ' ' '\n' | sort -u
}

# The values an option takes when its usage spells them: "--sort self|total", "--range life".
_profq_values()
{
	_profq_usage "$1" "$2" | grep -oE -- "$3 [a-z][a-z-]*(\|[a-z][a-z-]*)*" | head -n 1 |
		cut -d ' ' -f 2 | tr '|' ' '
}

_profq()
{
	local profq=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= i values
	local w
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	COMPREPLY=()
	# The command: the first word that is neither a global option nor its value.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		--socket | --state-dir | --color) ((i++)) ;;
		-*) ;;
		*)
			cmd=$w
			break
			;;
		esac
	done
	# run: the command line to run starts after "--" or at the first word that is not an
	# option (or an option's value).
	if [[ $cmd == run ]]; then
		for ((i++; i <= COMP_CWORD; i++)); do
			w=${COMP_WORDS[i]}
			case $w in
			--) ;;
			--repeat | -n)
				((i++))
				continue
				;;
			-*)
				((i < COMP_CWORD)) && continue
				break # an option being typed
				;;
			esac
			[[ $w == -- ]] && ((i++))
			if ((i > COMP_CWORD)); then
				break
			elif ((i == COMP_CWORD)); then
				mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
			else
				mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			fi
			return 0
		done
	fi
	case $prev in
	--socket | -o)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return 0
		;;
	--state-dir)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return 0
		;;
	--user)
		mapfile -t COMPREPLY < <(compgen -u -- "$cur")
		return 0
		;;
	--pid | --base-pid | --with-pid)
		# The processes profqd knows (the PID column of its ps), else the live ones.
		values=$("$profq" ps -n 200 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { print $1 }')
		[[ -n $values ]] || values=$(ps -e -o pid= 2>/dev/null)
		mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
		return 0
		;;
	esac
	if [[ -z $cmd ]]; then
		if [[ $prev == -* ]]; then
			values=$(_profq_values "$profq" "" "$prev")
		fi
		if [[ -n $values ]]; then
			:
		elif [[ $cur == -* ]]; then
			values="--socket --state-dir --json --color --help --version"
		else
			values=$(_profq_commands "$profq")
		fi
		mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
		return 0
	fi
	if [[ $prev == -* ]]; then
		values=$(_profq_values "$profq" "$cmd" "$prev")
		if [[ -n $values ]]; then
			mapfile -t COMPREPLY < <(compgen -W "$values" -- "$cur")
			return 0
		fi
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(_profq_options "$profq" "$cmd") --help" -- "$cur")
	fi
	return 0
}
complete -F _profq profq
