# bash completion for orch(1). Installed as <datadir>/bash-completion/completions/orch.
_orch_vms() {
	"${1:-orch}" --json status 2>/dev/null |
		sed -n 's/.*"name": *"\([A-Za-z0-9_-]*\)".*/\1/p'
}

_orch() {
	local cur prev words cword
	_init_completion 2>/dev/null || {
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	}
	local cmds="dispatch status tasks result logs cancel vm shell dashboard profiles doctor egress agents diff checkout push workspaces nodes metrics"
	local orch=${words[0]} verb="" i
	for ((i = 1; i < cword; i++)); do
		case ${words[i]} in
		-s | --socket) ((i++)) ;;
		-*) ;;
		*) verb=${words[i]}; break ;;
		esac
	done
	case $prev in
	-s | --socket | --config | -c | --image | --dir | --tmux-socket)
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--repo)
		COMPREPLY=($(compgen -d -- "$cur"))
		return ;;
	--state)
		COMPREPLY=($(compgen -W "queued leased running succeeded failed timed_out cancelled lost" -- "$cur"))
		return ;;
	--vm)
		COMPREPLY=($(compgen -W "$(_orch_vms "$orch")" -- "$cur"))
		return ;;
	--profile)
		COMPREPLY=($(compgen -W "$("$orch" profiles 2>/dev/null | awk 'NR > 1 { print $1 }')" -- "$cur"))
		return ;;
	esac
	if [ -z "$verb" ]; then
		COMPREPLY=($(compgen -W "$cmds --socket --json --help --version" -- "$cur"))
		return
	fi
	local opts=""
	case $verb in
	dispatch) opts="--vm --agent --priority --timeout --env --cwd --retries --profile --prompt --egress --repo --ref --wait --follow --raw --json --help --" ;;
	status) opts="--json --help" ;;
	tasks) opts="--state --limit --json --help" ;;
	result | cancel | diff) opts="--json --help" ;;
	checkout) opts="--branch --json --help" ;;
	push) opts="--remote --to --allow --json --help" ;;
	workspaces) opts="ls rm --json --help" ;;
	logs) opts="-f --raw --from-seq --attempt --all-attempts --json --help" ;;
	vm) opts="list pools up down restart console --bytes --json --help" ;;
	shell) opts="--print --address --wait --json --help" ;;
	dashboard) opts="--session --tmux-socket --no-attach --interval --json --help" ;;
	profiles) opts="list show dispatch --prompt --config --dir --json --help" ;;
	doctor) opts="--json --config --image --no-boot --kvm-timeout --help" ;;
	egress) opts="log --task --limit --json --help" ;;
	nodes | metrics) opts="--json --help" ;;
	agents) opts="list install remove --node --force --config --dir --json --help" ;;
	esac
	# Positional VM names: orch shell VM, orch vm up|down|restart|console VM.
	if [[ $cur != -* ]]; then
		case $verb:$prev in
		shell:shell | vm:up | vm:down | vm:restart | vm:console)
			COMPREPLY=($(compgen -W "$(_orch_vms "$orch")" -- "$cur"))
			return ;;
		profiles:show | profiles:dispatch)
			COMPREPLY=($(compgen -W "$("$orch" profiles 2>/dev/null | awk 'NR > 1 { print $1 }')" -- "$cur"))
			return ;;
		esac
		# Agent names after orch agents install|remove.
		case " ${words[*]:1:cword} " in
		*" agents install "* | *" agents remove "*)
			COMPREPLY=($(compgen -W "claude codex gemini opencode pi all" -- "$cur"))
			return ;;
		esac
	fi
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -F _orch orch
